-- Tenant names are unique, whatever their case, so that the CLI can address a tenant by name
-- (`gateway key create --tenant acme`). Names that were given twice before this migration
-- keep their oldest holder; every later one gets its id appended ("Acme (ten_...)"), which
-- is unique because ids are, and the operator can rename it (PATCH /api/v1/tenants/{id}).

UPDATE tenants SET name = name || ' (' || id || ')'
WHERE EXISTS (
    SELECT 1 FROM tenants AS older
    WHERE lower(older.name) = lower(tenants.name)
      AND (older.created_at < tenants.created_at
           OR (older.created_at = tenants.created_at AND older.id < tenants.id))
);
CREATE UNIQUE INDEX tenants_name ON tenants (lower(name));
