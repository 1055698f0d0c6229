-- Hand-written DuckDB baseline: the twelve indicators of the pack "Psykisk ohälsa i
-- primärvården" (17 figures), for every unit and the region × month, quarter and year ×
-- sex K/M/T × report age band and 'alla', straight from the synthetic Parquet files.
--
-- Written independently of the engine, as an analyst would write it by hand: one script, plain
-- views over read_parquet, intermediate tables for the episode logic, counts summed per month
-- and rolled up, COUNT(DISTINCT) where patients are counted. No intervals, no funnel classes, no suppression, no storage: numerators
-- and denominators only, in the table `baseline`. bench/engine_bench.py times it and checks
-- that its figures equal the engine's.
--
-- {data} is replaced by the directory of month folders (OUT/YYYY-MM/<table>.parquet), {listings}
-- by a Parquet file of the registry's listed population (what the engine divides by: the
-- extracts' own listings cover only the extract months, a year's mean needs all twelve).

CREATE VIEW contacts AS SELECT * FROM read_parquet('{data}/*/contacts.parquet');
CREATE VIEW diagnoses AS SELECT * FROM read_parquet('{data}/*/diagnoses.parquet');
CREATE VIEW procedures AS SELECT * FROM read_parquet('{data}/*/procedures.parquet');
CREATE VIEW measurements AS SELECT * FROM read_parquet('{data}/*/measurements.parquet');
CREATE VIEW listings AS SELECT * FROM read_parquet('{listings}');
-- A sick-leave case is in every month's file it overlaps: keep the latest file's row.
CREATE VIEW sick_leave AS
SELECT * EXCLUDE (filename) FROM read_parquet('{data}/*/sick_leave.parquet', filename = true)
QUALIFY row_number() OVER (PARTITION BY patient_key, unit_hsa_id, start_date
                           ORDER BY filename DESC) = 1;

CREATE MACRO band(age) AS CASE
    WHEN age IS NULL OR age < 0 THEN NULL
    WHEN age <= 17 THEN '0-17' WHEN age <= 24 THEN '18-24' WHEN age <= 44 THEN '25-44'
    WHEN age <= 64 THEN '45-64' WHEN age <= 79 THEN '65-79' ELSE '80+' END;
CREATE MACRO fine_to_report(b) AS band(CAST(regexp_extract(b, '^(\d+)', 1) AS INTEGER));

-- Periods: every month with contacts, with its quarter and year.
CREATE TABLE months AS
SELECT DISTINCT strftime(contact_date, '%Y-%m') AS month,
       year(contact_date) AS y, quarter(contact_date) AS q
FROM contacts;
CREATE TABLE period_map AS
SELECT month, month AS period, 'month' AS kind,
       last_day(CAST(month || '-01' AS DATE)) AS p_end, y FROM months
UNION ALL
SELECT month, y || 'Q' || q, 'quarter',
       last_day(make_date(y, 3 * q, 1)), y FROM months
UNION ALL
SELECT month, CAST(y AS VARCHAR), 'year', make_date(y, 12, 31), y FROM months;
CREATE TABLE periods AS SELECT DISTINCT period, kind, p_end, y FROM period_map;
-- Every month of each period, for the listed population: the mean of a quarter or a year is
-- over all its months, those without extract data included.
CREATE TABLE listing_map AS
SELECT period, strftime(CAST(d AS DATE), '%Y-%m') AS month
FROM (
    SELECT period, unnest(generate_series(
               CAST(date_trunc(kind, p_end) AS TIMESTAMP), CAST(p_end AS TIMESTAMP),
               INTERVAL 1 MONTH)) AS d
    FROM periods
);

-- Contact-level diagnosis and procedure flags.
CREATE TABLE dx AS
SELECT contact_id,
       bool_or(icd10_code LIKE 'F%' OR icd10_code = 'Z73.0') AS mh,
       bool_or(icd10_code LIKE 'F32%' OR icd10_code LIKE 'F33%') AS dep,
       bool_or(icd10_code IN ('F32.0', 'F32.1', 'F33.0', 'F33.1')) AS mild,
       bool_or(icd10_code LIKE 'F40%' OR icd10_code LIKE 'F41%') AS anx
FROM diagnoses GROUP BY contact_id;
CREATE TABLE treated AS
SELECT DISTINCT contact_id FROM procedures WHERE kva_code IN ('DU008', 'DU011', 'DU022');

CREATE TABLE c AS
SELECT c.contact_id, c.patient_key, c.unit_hsa_id AS unit, c.contact_date AS d, c.sex,
       c.birth_year, c.profession, c.contact_type, c.is_new_visit,
       coalesce(x.mh, false) AS mh, coalesce(x.dep, false) AS dep,
       coalesce(x.mild, false) AS mild, coalesce(x.anx, false) AS anx,
       t.contact_id IS NOT NULL AS treated
FROM contacts c
LEFT JOIN dx x USING (contact_id)
LEFT JOIN treated t USING (contact_id);

-- Episodes.
CREATE TABLE dep_days AS
SELECT patient_key, d, arg_min(unit, contact_id) AS unit, arg_min(sex, contact_id) AS sex,
       arg_min(birth_year, contact_id) AS birth_year, bool_or(mild) AS mild
FROM c WHERE dep GROUP BY patient_key, d;
CREATE TABLE new_dep AS
SELECT * FROM (
    SELECT *, lag(d) OVER (PARTITION BY patient_key ORDER BY d) AS prev FROM dep_days
) WHERE prev IS NULL OR d - prev > 365;
CREATE TABLE treat_days AS
SELECT patient_key, d, arg_min(unit, contact_id) AS unit, arg_min(sex, contact_id) AS sex,
       arg_min(birth_year, contact_id) AS birth_year
FROM c WHERE treated GROUP BY patient_key, d;
CREATE TABLE starts AS
SELECT * EXCLUDE (prev) FROM (
    SELECT *, lag(d) OVER (PARTITION BY patient_key ORDER BY d) AS prev FROM treat_days
) WHERE prev IS NULL OR d - prev > 180;
CREATE TABLE courses AS
SELECT s.patient_key, s.d AS start, s.unit, s.sex, s.birth_year, count(*) AS sessions
FROM starts s JOIN treat_days t ON t.patient_key = s.patient_key AND t.d BETWEEN s.d AND s.d + 180
GROUP BY ALL;
CREATE TABLE ratings AS
SELECT patient_key, date AS d, instrument, avg(score) AS score FROM measurements
WHERE instrument IN ('PHQ-9', 'GAD-7', 'MADRS-S') GROUP BY ALL;
CREATE TABLE pairs AS
SELECT c.patient_key, c.start, r.instrument,
       arg_max(r.score, r.d) FILTER (WHERE r.d BETWEEN c.start - 30 AND c.start + 7) AS b,
       arg_max(r.score, r.d) FILTER (WHERE r.d BETWEEN c.start + 28 AND c.start + 180) AS f
FROM courses c JOIN ratings r ON r.patient_key = c.patient_key
 AND r.d BETWEEN c.start - 30 AND c.start + 180
GROUP BY ALL;
CREATE TABLE outcome AS
SELECT c.patient_key, c.start, c.unit, c.sex, c.birth_year,
       bool_or(CASE p.instrument WHEN 'PHQ-9' THEN b >= 10 ELSE b >= 8 END) AS caseness,
       bool_and(CASE p.instrument WHEN 'PHQ-9' THEN f <= 9 ELSE f <= 7 END) AS below,
       bool_or(CASE p.instrument WHEN 'PHQ-9' THEN b - f >= 6 ELSE b - f >= 4 END) AS better,
       bool_or(CASE p.instrument WHEN 'PHQ-9' THEN f - b >= 6 ELSE f - b >= 4 END) AS worse
FROM courses c JOIN pairs p ON p.patient_key = c.patient_key AND p.start = c.start
WHERE c.sessions >= 2 AND p.instrument IN ('PHQ-9', 'GAD-7') AND b IS NOT NULL
  AND f IS NOT NULL
GROUP BY ALL;
CREATE TABLE mh_days AS SELECT DISTINCT patient_key, d FROM c WHERE mh;
CREATE TABLE waits AS
SELECT s.patient_key, s.d AS start, s.unit, s.sex, s.birth_year,
       s.d - least(s.d, coalesce(min(m.d), s.d)) AS wait
FROM starts s LEFT JOIN mh_days m ON m.patient_key = s.patient_key
 AND m.d BETWEEN s.d - 365 AND s.d
GROUP BY s.patient_key, s.d, s.unit, s.sex, s.birth_year;

-- Cases anchored on a date: (code, unit, date, sex, birth year, patient, num, value).
CREATE TABLE cases AS
SELECT 'PO01' AS code, unit, d, sex, birth_year, patient_key, mh AS num,
       NULL::DOUBLE AS value FROM c WHERE is_new_visit
UNION ALL SELECT 'PO03A', unit, d, sex, birth_year, patient_key, true, NULL FROM c WHERE dep
UNION ALL SELECT 'PO03B', unit, d, sex, birth_year, patient_key, true, NULL FROM c WHERE anx
UNION ALL
SELECT 'PO04', n.unit, n.d, n.sex, n.birth_year, n.patient_key,
       EXISTS (SELECT 1 FROM treat_days t WHERE t.patient_key = n.patient_key
               AND t.d BETWEEN n.d AND n.d + 90), NULL
FROM new_dep n WHERE n.mild AND year(n.d) - n.birth_year >= 18
UNION ALL
SELECT 'PO05', n.unit, n.d, n.sex, n.birth_year, n.patient_key,
       EXISTS (SELECT 1 FROM dep_days f WHERE f.patient_key = n.patient_key
               AND f.d BETWEEN n.d + 10 AND n.d + 56), NULL
FROM new_dep n WHERE year(n.d) - n.birth_year >= 18
UNION ALL
SELECT 'PO06', c.unit, c.start, c.sex, c.birth_year, c.patient_key,
       EXISTS (SELECT 1 FROM pairs p WHERE p.patient_key = c.patient_key
               AND p.start = c.start AND p.b IS NOT NULL AND p.f IS NOT NULL), NULL
FROM courses c WHERE c.sessions >= 2
UNION ALL
SELECT 'PO07A', unit, start, sex, birth_year, patient_key, below, NULL FROM outcome
WHERE caseness
UNION ALL
SELECT 'PO07B', unit, start, sex, birth_year, patient_key, better AND NOT worse, NULL
FROM outcome
UNION ALL SELECT 'PO08A', unit, start, sex, birth_year, patient_key, NULL, wait FROM waits
UNION ALL SELECT 'PO08B', unit, start, sex, birth_year, patient_key, wait <= 30, NULL FROM waits
UNION ALL SELECT 'PO08C', unit, start, sex, birth_year, patient_key, wait <= 90, NULL FROM waits
UNION ALL
SELECT 'PO09', unit, d, sex, birth_year, patient_key,
       profession IN ('psykolog', 'kurator', 'psykoterapeut'), NULL FROM c WHERE mh
UNION ALL
SELECT 'PO10A', unit, d, sex, birth_year, patient_key, contact_type IN ('digital', 'video'),
       NULL FROM c WHERE mh
UNION ALL
SELECT 'PO10B', unit, d, sex, birth_year, patient_key, contact_type = 'grupp', NULL
FROM c WHERE mh;

-- Cases counted in every period they are ongoing at (sick leave at the period's last day).
CREATE TABLE patients AS
SELECT patient_key, min(sex) AS sex, min(birth_year) AS birth_year FROM contacts GROUP BY 1;
CREATE TABLE pcases AS
SELECT CASE WHEN s.icd10_code = 'F43.8A' AND p.p_end - s.start_date + 1 > 180 THEN 'both'
            ELSE 'PO02' END AS which,
       s.unit_hsa_id AS unit, p.period, p.kind, p.y, pt.sex, pt.birth_year, s.patient_key,
       s.icd10_code LIKE 'F%' AS num, p.p_end - s.start_date + 1 > 90 AS long90
FROM sick_leave s JOIN periods p ON s.start_date <= p.p_end AND s.end_date >= p.p_end
LEFT JOIN patients pt USING (patient_key)
WHERE p.p_end - s.start_date + 1 > 90;

-- Aggregation: counts are summed per month first and rolled up; distinct patients (PO03) and
-- medians (PO08A) are grouped from the cases.
CREATE TABLE partial AS
SELECT code, strftime(d, '%Y-%m') AS month, unit, sex, band(year(d) - birth_year) AS band,
       count(*) AS n, count(*) FILTER (WHERE num) AS x
FROM cases WHERE code NOT IN ('PO03A', 'PO03B', 'PO08A')
GROUP BY ALL;

CREATE TABLE keyed AS
SELECT k.code, m.period, m.kind, k.unit, k.sex, band(m.y - k.birth_year) AS band,
       k.patient_key, k.value
FROM cases k JOIN period_map m ON m.month = strftime(k.d, '%Y-%m')
WHERE k.code IN ('PO03A', 'PO03B', 'PO08A');

CREATE TABLE agg AS
SELECT code, m.period, m.kind,
       CASE WHEN grouping(unit) = 1 THEN '' ELSE unit END AS unit,
       CASE WHEN grouping(sex) = 1 THEN 'T' ELSE sex END AS sex,
       CASE WHEN grouping(band) = 1 THEN 'alla' ELSE band END AS band,
       sum(n) AS n, sum(x) AS x, NULL::DOUBLE AS med
FROM partial p JOIN period_map m USING (month)
GROUP BY code, m.period, m.kind, GROUPING SETS ((unit), ()), CUBE(sex, band)
UNION ALL
SELECT code, period, kind,
       CASE WHEN grouping(unit) = 1 THEN '' ELSE unit END,
       CASE WHEN grouping(sex) = 1 THEN 'T' ELSE sex END,
       CASE WHEN grouping(band) = 1 THEN 'alla' ELSE band END,
       CASE WHEN code = 'PO08A' THEN count(*) ELSE count(DISTINCT patient_key) END, NULL,
       median(value)
FROM keyed
GROUP BY code, period, kind, GROUPING SETS ((unit), ()), CUBE(sex, band)
UNION ALL
SELECT 'PO02', period, kind,
       CASE WHEN grouping(unit) = 1 THEN '' ELSE unit END,
       CASE WHEN grouping(sex) = 1 THEN 'T' ELSE sex END,
       CASE WHEN grouping(b) = 1 THEN 'alla' ELSE b END,
       count(*), count(*) FILTER (WHERE num), NULL
FROM (SELECT *, band(y - birth_year) AS b FROM pcases)
GROUP BY period, kind, GROUPING SETS ((unit), ()), CUBE(sex, b)
UNION ALL
SELECT 'PO12', period, kind,
       CASE WHEN grouping(unit) = 1 THEN '' ELSE unit END,
       CASE WHEN grouping(sex) = 1 THEN 'T' ELSE sex END,
       CASE WHEN grouping(b) = 1 THEN 'alla' ELSE b END,
       count(*), NULL, NULL
FROM (SELECT *, band(y - birth_year) AS b FROM pcases WHERE which = 'both')
GROUP BY period, kind, GROUPING SETS ((unit), ()), CUBE(sex, b);

-- Listed population: mean over the months of the period with a listing.
CREATE TABLE listed AS
WITH l AS (
    SELECT m.period, l.unit_hsa_id AS unit, l.month, l.sex, fine_to_report(l.age_band) AS band,
           l.listed
    FROM listings l JOIN listing_map m ON m.month = l.month
),
n AS (
    SELECT period, CASE WHEN grouping(unit) = 1 THEN '' ELSE unit END AS unit,
           count(DISTINCT month) AS months
    FROM l GROUP BY period, GROUPING SETS ((unit), ())
)
SELECT s.period, s.unit, s.sex, s.band, s.listed / n.months AS listed FROM (
    SELECT period, CASE WHEN grouping(unit) = 1 THEN '' ELSE unit END AS unit,
           CASE WHEN grouping(sex) = 1 THEN 'T' ELSE sex END AS sex,
           CASE WHEN grouping(band) = 1 THEN 'alla' ELSE band END AS band,
           sum(listed) AS listed
    FROM l GROUP BY period, GROUPING SETS ((unit), ()), CUBE(sex, band)
) s JOIN n USING (period, unit);

-- Staffing (PO11) comes from the registry, not the extract: the baseline leaves it out.

CREATE TABLE baseline AS
SELECT code, period, unit, sex, band AS age_band,
       CASE WHEN code IN ('PO03A', 'PO03B', 'PO12') THEN n
            WHEN code = 'PO08A' THEN NULL ELSE x END AS numerator,
       CASE WHEN code IN ('PO03A', 'PO03B', 'PO12') THEN l.listed ELSE n END AS denominator,
       med
FROM agg a LEFT JOIN listed l USING (period, unit, sex, band)
WHERE sex IS NOT NULL AND band IS NOT NULL;
