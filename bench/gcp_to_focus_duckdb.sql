-- The speed bar for costflow's GCP ingest: a detailed billing export (nested Parquet, or
-- newline-delimited JSON gzip as BigQuery extracts it) -> FOCUS Parquet in ONE DuckDB statement.
-- It produces 30 FOCUS columns with the rules of costflow/providers/gcp/billing.py: money exact
-- (each FLOAT64 read through its shortest text, CAST(x::VARCHAR AS DECIMAL(38, 18)), the way
-- ours reads BigQuery's JSON text), BilledCost = cost + the sum of credits, computed the same
-- exact way, credits of type COMMITTED_USAGE_DISCOUNT* naming the commitment, ChargeCategory
-- from cost_type, billing period from invoice.month, units, service category, region name and
-- resource type from the same mapping files, and Tags as JSON: the project labels, labels,
-- system labels and tags as one list of {k, v} (ours merges them into one object, later keys
-- winning; a key repeated across them makes DuckDB's map refuse the row, so the list is kept). It does not validate, dead-letter, reconcile, amortize or load a
-- warehouse; ours does.
--
-- Rendered by bench/gcp_ingest_bench.py (string.Template):
--   ${reader}: read_parquet(<path>) or read_json(<path>, ...) with the export's columns
--   ${services}, ${regions}, ${units}, ${types}: the mapping files (quoted SQL string literals)
--   ${out}: the output Parquet path (a quoted SQL string literal)
COPY (
    WITH source AS (
        SELECT * FROM ${reader}
    ),

    services AS (
        SELECT service_id, service_category, service_subcategory
        FROM read_csv(${services}, header = true, all_varchar = true)
    ),

    regions AS (
        SELECT region_id, region_name FROM read_csv(${regions}, header = true, all_varchar = true)
    ),

    units AS (
        SELECT gcp_unit, focus_unit FROM read_csv(${units}, header = true, all_varchar = true)
    ),

    types AS (
        SELECT resource_kind, resource_type
        FROM read_csv(${types}, header = true, all_varchar = true)
    ),

    typed AS (
        SELECT
            s.*,
            CAST(s.cost::VARCHAR AS DECIMAL(38, 18)) AS cost_exact,
            COALESCE(list_sum(list_transform(s.credits,
                lambda c: CAST(c.amount::VARCHAR AS DECIMAL(38, 18)))), 0) AS credits_exact,
            list_filter(s.credits, lambda c: starts_with(c.type, 'COMMITTED_USAGE_DISCOUNT'))[1]
                AS commitment,
            CAST(s.cost_at_list::VARCHAR AS DECIMAL(38, 18)) AS list_exact,
            strptime(s.invoice.month || '01', '%Y%m%d')::TIMESTAMP AS period_start
        FROM source AS s
    )

    SELECT
        t.billing_account_id AS BillingAccountId,
        t.currency AS BillingCurrency,
        t.period_start AS BillingPeriodStart,
        t.period_start + INTERVAL 1 MONTH AS BillingPeriodEnd,
        t.usage_start_time AS ChargePeriodStart,
        t.usage_end_time AS ChargePeriodEnd,
        CASE t.cost_type WHEN 'tax' THEN 'Tax' WHEN 'adjustment' THEN 'Adjustment'
             WHEN 'rounding_error' THEN 'Adjustment' ELSE 'Usage' END AS ChargeCategory,
        CASE WHEN t.adjustment_info.id IS NOT NULL THEN 'Correction' END AS ChargeClass,
        t.sku.description AS ChargeDescription,
        CASE WHEN t.cost_type = 'regular' THEN 'Usage-Based' ELSE 'One-Time' END
            AS ChargeFrequency,
        t.cost_exact + t.credits_exact AS BilledCost,
        t.cost_exact + t.credits_exact AS EffectiveCost,
        t.list_exact AS ListCost,
        t.cost_exact AS ContractedCost,
        CAST(t.usage.amount::VARCHAR AS DECIMAL(38, 18)) AS ConsumedQuantity,
        COALESCE(u.focus_unit, t.usage.unit) AS ConsumedUnit,
        CAST(t.usage.amount_in_pricing_units::VARCHAR AS DECIMAL(38, 18)) AS PricingQuantity,
        t.usage.pricing_unit AS PricingUnit,
        CAST(t.price.list_price AS DECIMAL(38, 18)) AS ListUnitPrice,
        t.commitment.id AS CommitmentDiscountId,
        t.commitment.full_name AS CommitmentDiscountName,
        'Google Cloud' AS ProviderName,
        COALESCE(t.seller_name, 'Google Cloud') AS PublisherName,
        t.location.region AS RegionId,
        r.region_name AS RegionName,
        t.resource.global_name AS ResourceId,
        ty.resource_type AS ResourceType,
        t.service.description AS ServiceName,
        sv.service_category AS ServiceCategory,
        t.sku.id AS SkuId,
        t.project.id AS SubAccountId,
        t.project.name AS SubAccountName,
        to_json(list_concat(
            list_transform(t.project.labels, lambda l: {'k': l.key, 'v': l.value}),
            list_transform(t.labels, lambda l: {'k': l.key, 'v': l.value}),
            list_transform(t.system_labels, lambda l: {'k': l.key, 'v': l.value}),
            list_transform(t.tags, lambda l: {'k': l.key, 'v': l.value})
        ))::VARCHAR AS Tags
    FROM typed AS t
    LEFT JOIN services AS sv ON sv.service_id = t.service.id
    LEFT JOIN regions AS r ON r.region_id = t.location.region
    LEFT JOIN units AS u ON u.gcp_unit = t.usage.unit
    LEFT JOIN types AS ty
        ON ty.resource_kind = regexp_extract(t.resource.global_name,
                                             '^//([^/]+)/(?:.*/)?([^/]+)/[^/]+$$', 1)
                              || '/' || regexp_extract(t.resource.global_name,
                                                       '^//([^/]+)/(?:.*/)?([^/]+)/[^/]+$$', 2)
) TO ${out} (FORMAT parquet, COMPRESSION snappy);
