-- 020_guest_upgrade: guest accounts upgraded to full accounts (POST /register with
-- guest_access_token, the spec's Guest Access module). A registration session
-- remembers which guest it upgrades, so later stages need not repeat the
-- guest's access token, which is never stored (tokens are kept only hashed).
ALTER TABLE uia_sessions ADD COLUMN upgrades_guest text;
ALTER TABLE users ADD COLUMN upgraded_ts bigint;
