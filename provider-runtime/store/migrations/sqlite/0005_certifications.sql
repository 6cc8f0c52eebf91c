-- The last conformance run of each provider version (`switchyard conformance`), shown in the catalog.
CREATE TABLE provider_certifications (
    domain        TEXT NOT NULL,
    name          TEXT NOT NULL,
    version       TEXT NOT NULL,
    certification TEXT NOT NULL,
    report        TEXT NOT NULL,
    certified_at  TEXT NOT NULL,
    PRIMARY KEY (domain, name, version)
);
