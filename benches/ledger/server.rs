//! The PostgreSQL side: databases, pgbench, and what the server saw per unit of work
//! (pg_stat_statements, when the server preloads it: `scripts/bench-ledger` does).

use std::process::Command;

use serde_json::{Value, json};

/// Runs `sql` with psql; its unaligned, tab-separated rows.
pub fn psql(url: &str, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAt", "-F", "\t", "-c", sql])
        .output()
        .expect("psql runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect())
}

pub fn psql_ok(url: &str, sql: &str) {
    if let Err(error) = psql(url, sql) {
        panic!("psql failed: {sql}: {error}");
    }
}

fn with_database(url: &str, database: &str) -> String {
    let (server, _) = url.rsplit_once('/').expect("a URL with a database");
    format!("{server}/{database}")
}

pub fn fresh_database(admin: &str, name: &str) -> String {
    drop_database(admin, name);
    psql_ok(admin, &format!("CREATE DATABASE {name}"));
    with_database(admin, name)
}

pub fn drop_database(admin: &str, name: &str) {
    psql_ok(
        admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}

/// pgbench's tables at scale 8.
pub fn pgbench_init(url: &str) {
    eprintln!("pgbench: initialising (scale 8)…");
    let init = Command::new("pgbench")
        .args(["-i", "-s", "8", "-q", url])
        .output()
        .expect("pgbench runs");
    assert!(
        init.status.success(),
        "pgbench -i failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
}

/// pgbench's tpcb-like transactions per second and in all: `clients` clients for `secs`
/// seconds on a scale-8 database (8 branches: some contention at 8 clients).
pub fn pgbench_tps(url: &str, clients: usize, secs: u64) -> (f64, u64) {
    eprintln!("pgbench: tpcb-like, {clients} clients, {secs} s…");
    let run = Command::new("pgbench")
        .args([
            "-n",
            "-b",
            "tpcb-like",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
        ])
        .args(["-P", "1", "-T", &secs.to_string(), url])
        // Its per-second progress (-P) goes to stderr: shown as it comes.
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("pgbench runs");
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "pgbench failed:\n{out}");
    let figure = |prefix: &str| {
        out.lines()
            .find_map(|l| {
                l.strip_prefix(prefix)
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|n| n.parse::<f64>().ok())
            })
            .unwrap_or_else(|| panic!("no {prefix:?} line in pgbench's output:\n{out}"))
    };
    let transactions = figure("number of transactions actually processed: ");
    (figure("tps = "), transactions as u64)
}

/// pg_stat_statements, read through a database that has the extension.
pub struct Statements {
    url: String,
}

impl Statements {
    /// `None`, with the reason printed, when the server does not preload the module.
    pub fn open(url: &str) -> Option<Statements> {
        let ready = psql(url, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .and_then(|_| psql(url, "SELECT count(*) FROM pg_stat_statements"));
        match ready {
            Ok(_) => Some(Statements { url: url.into() }),
            Err(why) => {
                eprintln!("no statement profile: {why}");
                None
            }
        }
    }

    pub fn reset(&self) {
        psql_ok(&self.url, "SELECT pg_stat_statements_reset()");
    }

    /// Top-level statements the server ran in `database` since the last reset, per `units`
    /// (postings, journals or transactions): how many, their execution (and planning) time,
    /// and the twelve that took the most time, statements inside others among them. Time spent waiting for a lock counts as execution time.
    pub fn profile(&self, database: &str, units: u64) -> Value {
        let units = units.max(1) as f64;
        let scope = format!(
            "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '{database}')"
        );
        // Statements run inside others (a trigger's, a function's: tracked with
        // pg_stat_statements.track = all) are part of their caller's time: counted once.
        let totals = psql(
            &self.url,
            &format!(
                "SELECT coalesce(sum(calls), 0), coalesce(sum(total_exec_time + total_plan_time), 0), \
                 coalesce(sum(total_plan_time), 0) {scope} AND toplevel"
            ),
        )
        .expect("pg_stat_statements reads");
        let number = |text: &str| text.parse::<f64>().unwrap_or_default();
        let top = psql(
            &self.url,
            &format!(
                "SELECT calls, total_exec_time + total_plan_time, \
                 CASE WHEN toplevel THEN '' ELSE '(inside) ' END \
                 || left(regexp_replace(query, '\\s+', ' ', 'g'), 110) \
                 {scope} ORDER BY 2 DESC LIMIT 12"
            ),
        )
        .expect("pg_stat_statements reads")
        .into_iter()
        .map(|row| {
            json!({
                "calls_per_unit": number(&row[0]) / units,
                "server_us_per_unit": number(&row[1]) * 1e3 / units,
                "query": row.get(2).cloned().unwrap_or_default(),
            })
        })
        .collect::<Vec<_>>();
        json!({
            "statements_per_unit": number(&totals[0][0]) / units,
            "server_us_per_unit": number(&totals[0][1]) * 1e3 / units,
            // Zero unless the server sets pg_stat_statements.track_planning.
            "planning_us_per_unit": number(&totals[0][2]) * 1e3 / units,
            "top": top,
        })
    }
}

/// CPU time of a PostgreSQL server running on this machine: the postmaster and every process
/// it started (backends, background workers), those that have exited included (the postmaster
/// reaped them: their time is in its children's). Unlike pg_stat_statements it counts parsing,
/// the protocol and the background writers, and no lock waits. `None` when the server is not
/// local (its data directory's postmaster.pid is not here, or names another process).
pub struct ServerCpu {
    postmaster: u32,
}

impl ServerCpu {
    pub fn find(url: &str) -> Option<ServerCpu> {
        let dir = psql(url, "SELECT current_setting('data_directory')").ok()?;
        let dir = std::path::PathBuf::from(dir.first()?.first()?);
        let pid_file = std::fs::read_to_string(dir.join("postmaster.pid")).ok()?;
        let postmaster: u32 = pid_file.lines().next()?.trim().parse().ok()?;
        let cwd = std::fs::read_link(format!("/proc/{postmaster}/cwd")).ok()?;
        (cwd == dir).then_some(ServerCpu { postmaster })
    }

    /// Seconds of CPU so far.
    pub fn seconds(&self) -> f64 {
        let mut ticks = 0;
        if let Some(fields) = stat_fields(self.postmaster) {
            // utime, stime, cutime, cstime
            ticks += (11..=14).map(|i| fields[i]).sum::<u64>();
        }
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some(fields) = stat_fields(pid).filter(|f| f[1] == u64::from(self.postmaster)) {
                ticks += fields[11] + fields[12];
            }
        }
        ticks as f64 / USER_HZ
    }
}

/// User and system CPU time of this process so far.
pub fn own_cpu_seconds() -> f64 {
    let fields = stat_fields(std::process::id()).expect("/proc/self/stat");
    (fields[11] + fields[12]) as f64 / USER_HZ
}

/// Linux reports process times in clock ticks of 1/100 s (USER_HZ) on every architecture.
const USER_HZ: f64 = 100.0;

/// The numeric fields of /proc/<pid>/stat after the command name, from the state (index 0)
/// on: [1] is the parent's pid, [11] utime, [12] stime, [13] cutime, [14] cstime.
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.get(stat.rfind(')')? + 2..)?;
    Some(
        after_name
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}
