-- A run that becomes queued (inserted, released by a stopping replica,
-- rescued after its lease expired) is announced on the channel
-- hushflow_runs_due, which every replica's claim loop LISTENs to (issue
-- 21: the claim loops' idle poll is then a safety net). A run inserted
-- already claimed (started at once by the replica that queued it) is not.
CREATE FUNCTION hushflow_runs_due() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('hushflow_runs_due', ''); RETURN NULL; END $$;
CREATE TRIGGER runs_due AFTER INSERT OR UPDATE OF status ON runs FOR EACH ROW WHEN (NEW.status = 'queued') EXECUTE FUNCTION hushflow_runs_due();
