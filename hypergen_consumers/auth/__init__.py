"""Who may connect and keep talking: permissions at the handshake, re-checked while connected.

``perms`` checks permissions with hypergen's semantics; ``authority`` keeps a connection's
user, session and permissions current (logout, password change, deactivation close the socket).
"""
