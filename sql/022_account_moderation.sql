-- 022_account_moderation: server admins suspend and lock local accounts (spec
-- v1.13 account suspension, v1.12 account locking, v1.18 PUT /admin/suspend
-- and /admin/lock). Both are reversible, unlike deactivation: the columns hold
-- when the state began, NULL when it is off. A locked account's requests are
-- refused with 401 M_USER_LOCKED (its tokens are kept for when it is
-- unlocked); a suspended one may read but not act (403 M_USER_SUSPENDED).
ALTER TABLE users ADD COLUMN suspended_ts bigint;
ALTER TABLE users ADD COLUMN locked_ts bigint;
