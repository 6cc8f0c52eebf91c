#![doc = include_str!("docs.md")]

mod config;

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use switchyard_contracts::SchemaError;
use switchyard_spi::{
    ErrorCode, Host, Provider, ProviderDescriptor, ProviderError, ProviderFactory, StartContext,
    TenantId,
};
use time::OffsetDateTime;

use crate::contract::{DeleteResult, GetResult, ListParams, ObjectMeta, Page, rfc3339};
use crate::engine::{Engine, Instance, describe};
use crate::key::ObjectKey;
use config::MemoryConfig;

/// Every storage action but `presign`: nothing serves the process's memory over HTTP.
const ACTIONS: [&str; 5] = ["put", "get", "head", "list", "delete"];

/// The variable that hosts the engine, and the budget it sets.
const BUDGET_VARIABLE: &str = "SWITCHYARD_STORAGE_MEMORY_BYTES_PER_TENANT";

/// The `storage/memory` engine: each tenant's objects in a map the factory owns, so both
/// instances of a tenant during a reconfigure share them.
pub struct MemoryStorageFactory {
    bytes_per_tenant: u64,
    tenants: Mutex<HashMap<TenantId, Arc<Mutex<Objects>>>>,
    descriptor: ProviderDescriptor,
}

/// One tenant's objects and the bytes of content they hold.
#[derive(Default)]
struct Objects {
    by_key: BTreeMap<String, Stored>,
    bytes: u64,
}

struct Stored {
    content: Bytes,
    meta: ObjectMeta,
}

impl MemoryStorageFactory {
    /// An engine that lets each tenant hold at most `bytes_per_tenant` bytes of content.
    pub fn new(bytes_per_tenant: u64) -> Self {
        MemoryStorageFactory {
            bytes_per_tenant,
            tenants: Mutex::new(HashMap::new()),
            descriptor: describe("memory")
                .summary("Objects in the process's memory, one map per tenant, within an operator-set budget; gone when the process stops.")
                .capabilities(&["list_pagination", "raw_body"])
                .config::<MemoryConfig>()
                .actions(&ACTIONS)
                .build(),
        }
    }
}

#[async_trait]
impl ProviderFactory for MemoryStorageFactory {
    fn node_local(&self) -> Option<&'static str> {
        Some("objects in this process's memory")
    }

    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let config = MemoryConfig::from_value(ctx.config, self.bytes_per_tenant)?;
        let objects = lock(&self.tenants).entry(ctx.tenant).or_default().clone();
        Ok(Arc::new(Instance(MemoryStorage {
            objects,
            max_object_bytes: config.max_object_bytes,
            bytes_per_tenant: self.bytes_per_tenant,
        })))
    }
}

/// One tenant's instance.
struct MemoryStorage {
    objects: Arc<Mutex<Objects>>,
    max_object_bytes: u64,
    bytes_per_tenant: u64,
}

#[async_trait]
impl Engine for MemoryStorage {
    const NAME: &'static str = "memory";
    const DEPENDENCY: &'static str = "memory";

    fn max_object_bytes(&self) -> u64 {
        self.max_object_bytes
    }

    async fn put(&self, key: ObjectKey, content: Bytes) -> Result<ObjectMeta, ProviderError> {
        let meta = ObjectMeta {
            key: key.as_str().to_owned(),
            size: content.len() as u64,
            modified_at: rfc3339(OffsetDateTime::now_utc())?,
        };
        let mut objects = lock(&self.objects);
        let replaced = objects.by_key.get(key.as_str()).map_or(0, |o| o.meta.size);
        let after = objects.bytes - replaced + meta.size;
        if after > self.bytes_per_tenant {
            return Err(ProviderError::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "the tenant's objects would hold {after} bytes; the operator allows {} per tenant",
                    self.bytes_per_tenant
                ),
            ));
        }
        objects.bytes = after;
        let stored = Stored {
            content,
            meta: meta.clone(),
        };
        objects.by_key.insert(meta.key.clone(), stored);
        Ok(meta)
    }

    async fn get(&self, key: ObjectKey) -> Result<GetResult, ProviderError> {
        let objects = lock(&self.objects);
        let stored = find(&objects, &key)?;
        Ok(GetResult::new(stored.meta.clone(), &stored.content))
    }

    async fn head(&self, key: ObjectKey) -> Result<ObjectMeta, ProviderError> {
        Ok(find(&lock(&self.objects), &key)?.meta.clone())
    }

    async fn list(&self, p: ListParams) -> Result<Page, ProviderError> {
        let objects = lock(&self.objects);
        let start = match &p.cursor {
            Some(cursor) => Bound::Excluded(cursor.as_str()),
            None => Bound::Included(p.prefix.as_str()),
        };
        // One more than the page, to learn whether anything remains after it.
        let mut found: Vec<ObjectMeta> = objects
            .by_key
            .range::<str, _>((start, Bound::Unbounded))
            .skip_while(|(key, _)| key.as_str() < p.prefix.as_str())
            .take_while(|(key, _)| key.starts_with(&p.prefix))
            .take(p.limit + 1)
            .map(|(_, stored)| stored.meta.clone())
            .collect();
        let more = found.len() > p.limit;
        found.truncate(p.limit);
        let next_cursor = more.then(|| found.last().map(|o| o.key.clone())).flatten();
        Ok(Page {
            objects: found,
            next_cursor,
        })
    }

    async fn delete(&self, key: ObjectKey) -> Result<DeleteResult, ProviderError> {
        let mut objects = lock(&self.objects);
        let removed = objects.by_key.remove(key.as_str());
        if let Some(stored) = &removed {
            objects.bytes -= stored.meta.size;
        }
        Ok(DeleteResult {
            deleted: removed.is_some(),
        })
    }

    async fn probe(&self) -> Result<(), ProviderError> {
        Ok(())
    }
}

fn find<'a>(objects: &'a Objects, key: &ObjectKey) -> Result<&'a Stored, ProviderError> {
    objects
        .by_key
        .get(key.as_str())
        .ok_or_else(|| ProviderError::not_found(format!("no object {:?}", key.as_str())))
}

/// A panic while a map was locked left it whole (every change is one insert or remove after
/// the checks), so a poisoned lock is used as it is.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Hosted when the operator gives tenants a budget in `SWITCHYARD_STORAGE_MEMORY_BYTES_PER_TENANT`.
pub(crate) fn builtin(_: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    hosted(std::env::var(BUDGET_VARIABLE).ok().as_deref())
}

/// The engine for the budget the operator set, if any; a budget that is not a number of
/// bytes above 0 stops the start-up, naming the variable.
fn hosted(budget: Option<&str>) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    let Some(budget) = budget else {
        return Ok(None);
    };
    match budget.parse::<u64>() {
        Ok(bytes) if bytes > 0 => Ok(Some(Arc::new(MemoryStorageFactory::new(bytes)))),
        _ => Err(SchemaError {
            location: "storage/memory".into(),
            message: format!("{BUDGET_VARIABLE} {budget:?} is not a number of bytes above 0"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchyard_spi::{CallContext, Invocation};

    use super::*;

    async fn tenant(factory: &MemoryStorageFactory, name: &str) -> Arc<dyn Provider> {
        factory
            .start(StartContext {
                tenant: TenantId::parse(name).unwrap(),
                config: json!({}),
                client: None,
            })
            .await
            .unwrap()
    }

    async fn put(
        provider: &dyn Provider,
        key: &str,
        content: &'static [u8],
    ) -> Result<(), ProviderError> {
        let context = CallContext {
            tenant: TenantId::parse("acme").unwrap(),
            request_id: "test".into(),
            subject: None,
            service: None,
        };
        let call = Invocation {
            action: "put".into(),
            params: json!({"key": key}),
            payload: Some(Bytes::from_static(content)),
        };
        provider.invoke(&context, call).await.map(drop)
    }

    #[tokio::test]
    async fn a_tenant_past_its_budget_is_refused_and_others_are_not_affected() {
        let factory = MemoryStorageFactory::new(8);
        let acme = tenant(&factory, "acme").await;
        put(acme.as_ref(), "a", b"12345").await.unwrap();
        let err = put(acme.as_ref(), "b", b"1234").await.unwrap_err();
        assert_eq!(err.code, ErrorCode::QuotaExceeded);
        // Replacing an object counts its new size only.
        put(acme.as_ref(), "a", b"12345678").await.unwrap();
        let globex = tenant(&factory, "globex").await;
        put(globex.as_ref(), "a", b"12345678").await.unwrap();
    }

    #[test]
    fn hosted_only_with_a_budget_and_a_bad_budget_stops_the_start() {
        assert!(hosted(None).unwrap().is_none());
        for bad in ["0", "-1", "lots"] {
            let err = hosted(Some(bad)).err().expect("refused");
            assert!(err.message.contains(BUDGET_VARIABLE), "{}", err.message);
        }
        let factory = hosted(Some("1048576")).unwrap().expect("hosted");
        assert_eq!(factory.descriptor().name, "memory");
    }

    #[tokio::test]
    async fn the_object_limit_never_exceeds_the_budget() {
        let factory = MemoryStorageFactory::new(4);
        let acme = factory
            .start(StartContext {
                tenant: TenantId::parse("acme").unwrap(),
                config: json!({"max_object_bytes": 1000}),
                client: None,
            })
            .await
            .unwrap();
        let err = put(acme.as_ref(), "a", b"12345").await.unwrap_err();
        assert_eq!(err.code, ErrorCode::PayloadTooLarge);
    }
}
