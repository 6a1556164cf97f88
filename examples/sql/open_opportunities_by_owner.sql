-- Open opportunities by owner, with their custom fields, from the embedded SQL copy
-- (`make sql` loads it; the job is `capsule-to-duckdb`). The file is named
-- warehouse.duckdb, not capsule.duckdb: DuckDB names a catalog after its file, and a catalog
-- `capsule` would clash with the schema `capsule`.
--
-- Open: not won or lost (no `closedOn`) and not deleted in Capsule (`_sdc_deleted_at` is the
-- tombstone's deletion time; the row stays, marked). Column names are Capsule's field names in
-- lower case, nested references flattened one level (`owner__name`, `value__amount`), and one
-- `custom_fields__<name>` column per custom field definition of the account (the sandbox has
-- source, seats, renewal, competitor, proposal and contract_start).
SELECT
    coalesce(owner__name, '(no owner)') AS owner,
    count(*) AS open_opportunities,
    sum(value__amount) AS total_value,
    string_agg(DISTINCT custom_fields__source, ', ' ORDER BY custom_fields__source) AS sources,
    sum(custom_fields__seats) AS seats,
    count(*) FILTER (WHERE custom_fields__renewal) AS renewals
FROM capsule.opportunities
WHERE closedon IS NULL
  AND _sdc_deleted_at IS NULL
GROUP BY 1
ORDER BY total_value DESC NULLS LAST, owner;
