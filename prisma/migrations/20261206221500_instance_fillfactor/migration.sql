-- Every sweep poll rewrites its instance's row (lastState, lastStateAt): room left in each page
-- lets PostgreSQL update in place (a HOT update) without touching the table's indexes.
ALTER TABLE "Instance" SET (fillfactor = 80);
