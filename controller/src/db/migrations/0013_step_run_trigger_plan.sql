-- The step_run update trigger joins its transition tables (old_rows, new_rows), which have no
-- statistics: Postgres plans a nested loop, quadratic in the rows one UPDATE touches (1.35 s for the
-- 5,000-row UPDATE that readies a 5,000-target run; 4.7 ms as a hash join). Fixed on the function,
-- because a plpgsql function's cached plan ignores a per-transaction setting.
ALTER FUNCTION opsc_step_run_updated() SET enable_nestloop = off;
