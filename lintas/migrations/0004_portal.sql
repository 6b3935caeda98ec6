-- The portal's own users (lintas.portal): who may sign in, with which role. Passwords are
-- stored as Argon2id hashes (pwdlib); the portal never writes a password in clear anywhere.

CREATE TABLE lintas.portal_users (
    name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9._-]{1,62}$'),
    -- operator: manages applications, keys, subscriptions and replays; viewer: reads only.
    role text NOT NULL CHECK (role IN ('operator', 'viewer')),
    password_hash text NOT NULL CHECK (password_hash <> ''),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    -- A disabled user cannot sign in, and its open sessions stop working on the next request.
    disabled_at timestamptz
);
