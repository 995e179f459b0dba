"""The login page for server-rendered apps and the session cookie of browser routes
(docs/login-and-browsers.md): settings.py, cookies.py (the cookies' headers),
return_url.py (where a login may send the browser back to), page.py (the HTML),
endpoints.py (/auth/login, /auth/logout), browser_auth.py (routes with `browser: true`)."""
