//! The chart of accounts: created once, never changed or removed, so a read of an account is
//! as good inside a posting's transaction as before it.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, FieldError, Problem, event::now_rfc3339};

use crate::Ledger;
use crate::db::{self, Row};
use crate::journal::{Journal, Side, invalid};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub code: String,
    pub account_type: String,
    pub currency: String,
}

impl Account {
    /// The side that increases the account: debit for assets and expenses, credit for
    /// liabilities, equity and income.
    pub fn normal_side(&self) -> Side {
        normal_side(&self.account_type)
    }
}

fn normal_side(account_type: &str) -> Side {
    match account_type {
        "asset" | "expense" => Side::Debit,
        _ => Side::Credit,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    code: String,
    name: String,
    #[serde(rename = "type")]
    account_type: String,
    currency: String,
    parent: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    after: Option<String>,
    limit: Option<u32>,
}

const COLUMNS: &str = "code, name, account_type, currency, parent, created_at";

fn to_json(row: &Row) -> Result<Value, Problem> {
    let account_type = db::text(row, "account_type")?;
    let mut account = json!({
        "code": db::text(row, "code")?,
        "name": db::text(row, "name")?,
        "type": account_type,
        "currency": db::text(row, "currency")?,
        "normal_side": normal_side(account_type).as_str(),
        "created_at": db::text(row, "created_at")?,
    });
    if let Some(parent) = db::optional_text(row, "parent") {
        account["parent"] = json!(parent);
    }
    Ok(account)
}

impl Ledger<'_> {
    pub async fn create_account(&self, params: CreateParams) -> Result<Value, Problem> {
        if !matches!(
            params.account_type.as_str(),
            "asset" | "liability" | "equity" | "income" | "expense"
        ) {
            return Err(invalid(
                "/type",
                "type is one of asset, liability, equity, income, expense",
            ));
        }
        if let Some(parent) = &params.parent
            && self
                .accounts(std::slice::from_ref(parent))
                .await?
                .is_empty()
        {
            return Err(Problem::new(
                ErrorCode::ResourceNotFound,
                format!("parent account {parent} does not exist"),
            )
            .with_errors(vec![FieldError {
                pointer: "/parent".into(),
                detail: format!("no account {parent}"),
            }]));
        }
        let created_at = now_rfc3339();
        let insert = format!("INSERT INTO gl_account ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
        let row = [
            ("code", json!(params.code)),
            ("name", json!(params.name)),
            ("account_type", json!(params.account_type)),
            ("currency", json!(params.currency)),
            ("parent", json!(params.parent)),
            ("created_at", json!(created_at)),
        ];
        let values = row.iter().map(|(_, v)| v.clone()).collect();
        match self.db.execute(self.client, &insert, values).await {
            Ok(_) => to_json(&row.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
            Err(problem) if problem.code == ErrorCode::Conflict => Err(Problem::new(
                ErrorCode::Conflict,
                format!(
                    "account {} already exists; account codes are never reused",
                    params.code
                ),
            )),
            Err(problem) => Err(problem),
        }
    }

    pub async fn list_accounts(&self, params: ListParams) -> Result<Value, Problem> {
        let limit = params.limit.unwrap_or(500).clamp(1, 1000) as usize;
        let rows = self
            .db
            .query(
                self.client,
                &format!("SELECT {COLUMNS} FROM gl_account WHERE code > ?1 ORDER BY code LIMIT ?2"),
                vec![json!(params.after.unwrap_or_default()), json!(limit + 1)],
            )
            .await?;
        let next_after = (rows.len() > limit)
            .then(|| db::text(&rows[limit - 1], "code").map(str::to_owned))
            .transpose()?;
        let accounts = rows
            .iter()
            .take(limit)
            .map(to_json)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({"accounts": accounts, "next_after": next_after}))
    }

    /// The existing accounts among `codes`, by code.
    pub async fn accounts(&self, codes: &[String]) -> Result<HashMap<String, Account>, Problem> {
        let mut found = HashMap::new();
        // At most 500 codes (a journal's lines): within one statement's 999 parameters.
        let placeholders: Vec<String> = (1..=codes.len()).map(|n| format!("?{n}")).collect();
        let rows = self
            .db
            .query(
                self.client,
                &format!(
                    "SELECT code, account_type, currency FROM gl_account WHERE code IN ({})",
                    placeholders.join(", ")
                ),
                codes.iter().map(|c| json!(c)).collect(),
            )
            .await?;
        for row in rows {
            let account = Account {
                code: db::text(&row, "code")?.into(),
                account_type: db::text(&row, "account_type")?.into(),
                currency: db::text(&row, "currency")?.into(),
            };
            found.insert(account.code.clone(), account);
        }
        Ok(found)
    }

    /// One account, or `resource_not_found` pointing at `pointer`.
    pub async fn account(&self, code: &str, pointer: &str) -> Result<Account, Problem> {
        self.accounts(&[code.to_owned()])
            .await?
            .remove(code)
            .ok_or_else(|| unknown_account(code, pointer))
    }

    /// Every line's account exists and keeps the line's currency: `resource_not_found` or
    /// `params_unprocessable`, pointing at each offending line.
    pub async fn check_lines(&self, journal: &Journal) -> Result<(), Problem> {
        let mut codes: Vec<String> = journal.lines.iter().map(|l| l.account.clone()).collect();
        codes.sort();
        codes.dedup();
        let accounts = self.accounts(&codes).await?;
        let mut unknown = Vec::new();
        let mut unknown_codes = Vec::new();
        let mut mismatched = Vec::new();
        for (i, line) in journal.lines.iter().enumerate() {
            match accounts.get(&line.account) {
                None => {
                    unknown_codes.push(line.account.as_str());
                    unknown.push(FieldError {
                        pointer: format!("/lines/{i}/account"),
                        detail: format!("no account {}", line.account),
                    });
                }
                Some(account) if account.currency != line.currency => mismatched.push(FieldError {
                    pointer: format!("/lines/{i}/currency"),
                    detail: format!(
                        "account {} is kept in {}, not {}",
                        account.code, account.currency, line.currency
                    ),
                }),
                Some(_) => {}
            }
        }
        if !unknown.is_empty() {
            unknown_codes.dedup();
            return Err(Problem::new(
                ErrorCode::ResourceNotFound,
                format!("unknown accounts: {}", unknown_codes.join(", ")),
            )
            .with_errors(unknown));
        }
        if !mismatched.is_empty() {
            // The accounts' currencies are data, not schema (ADR 23): 422.
            return Err(Problem::new(
                ErrorCode::ParamsUnprocessable,
                "a line's currency must be its account's currency",
            )
            .with_errors(mismatched));
        }
        Ok(())
    }
}

pub fn unknown_account(code: &str, pointer: &str) -> Problem {
    Problem::new(
        ErrorCode::ResourceNotFound,
        format!("account {code} does not exist"),
    )
    .with_errors(vec![FieldError {
        pointer: pointer.into(),
        detail: format!("no account {code}"),
    }])
}
