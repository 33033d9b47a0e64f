"""Access policy in one place: who is calling (:class:`Principal`), what each endpoint needs
(:class:`Action`), and the one rule between them (:func:`authorise`).

Enforced by:

* ``middleware.py`` — before routing, on HTTP, SSE and WebSocket: the Host allow-list (DNS
  rebinding), refusal of cross-site state-changing requests and WebSocket handshakes, and the end
  of connections whose API key is revoked (``revocation.py``);
* ``routes.py`` — one Litestar guard for every route (READ unless listed);
* ``graphql.py`` — one schema extension for every root field (READ unless listed; mutations
  must be listed);
* ``csrf.py`` — the sign-in form's token.
"""

from app.access.policy import AccessDenied, authorise, is_loopback, resolve
from app.access.principal import Action, KeyRef, Principal

__all__ = ["AccessDenied", "Action", "KeyRef", "Principal", "authorise", "is_loopback", "resolve"]
