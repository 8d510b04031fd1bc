-- A lever's position in the control topic (its partition and offset, as the sink read it), so
-- readers of the store order levers by log position, never by the time a message claims: a lever
-- dated in the future cannot pin the read-back. Rows written before this migration keep -1 and sort
-- before every positioned row of their key (one key is one partition of the compacted topic).

ALTER TABLE $db.control ADD COLUMN IF NOT EXISTS log_partition Int32 DEFAULT -1;

ALTER TABLE $db.control ADD COLUMN IF NOT EXISTS log_offset Int64 DEFAULT -1
