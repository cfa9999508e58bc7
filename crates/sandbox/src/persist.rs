//! Sandbox persistence (`--data FILE`): every entity, definition list, task and idempotency key
//! as one JSON row in SQLite, written in one transaction after each change (the store marks
//! what changed) and loaded on start. Used by `Sandbox`; reads and writes `store`.

use std::path::Path;

use rusqlite::{Connection, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::store::{
    Counters, Customer, Entity, FieldDef, Organization, Store, StoredEntitlement, T_CUSTOMER,
    T_ENTITLEMENT, T_FIELD, T_KEY, T_META, T_ORGANIZATION, T_PRODUCT, T_TASK, Task,
};
use csmport_api::model::Product;

pub struct Db {
    conn: Connection,
}

fn sql(e: rusqlite::Error) -> String {
    e.to_string()
}

impl Db {
    pub fn open(path: &Path) -> Result<Db, String> {
        let conn = Connection::open(path).map_err(sql)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS entities (
                 kind TEXT NOT NULL,
                 id   TEXT NOT NULL,
                 json TEXT NOT NULL,
                 PRIMARY KEY (kind, id)
             );",
        )
        .map_err(sql)?;
        Ok(Db { conn })
    }

    /// True when the file holds no data yet (seeds apply only then).
    pub fn is_empty(&self) -> Result<bool, String> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM entities", [], |r| r.get(0))
            .map_err(sql)?;
        Ok(n == 0)
    }

    pub fn load(&self, store: &mut Store) -> Result<(), String> {
        fn all<T: DeserializeOwned>(
            conn: &Connection,
            kind: &str,
        ) -> Result<Vec<(String, T)>, String> {
            let mut st = conn
                .prepare("SELECT id, json FROM entities WHERE kind = ?1")
                .map_err(sql)?;
            let rows = st
                .query_map(params![kind], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(sql)?;
            let mut out = Vec::new();
            for row in rows {
                let (id, json) = row.map_err(sql)?;
                let v = serde_json::from_str(&json).map_err(|e| format!("{kind} {id}: {e}"))?;
                out.push((id, v));
            }
            Ok(out)
        }
        for (id, c) in all::<Customer>(&self.conn, T_CUSTOMER)? {
            store.customers.insert(id, c);
        }
        for (id, o) in all::<Organization>(&self.conn, T_ORGANIZATION)? {
            store.organizations.insert(id, o);
        }
        store.changed();
        for (id, p) in all::<Product>(&self.conn, T_PRODUCT)? {
            store.products.insert(id, p);
        }
        for (id, e) in all::<StoredEntitlement>(&self.conn, T_ENTITLEMENT)? {
            store.entitlements.insert(id, e);
        }
        for (id, t) in all::<Task>(&self.conn, T_TASK)? {
            store.tasks.insert(id, t);
        }
        for (key, (body, task)) in all::<(String, String)>(&self.conn, T_KEY)? {
            store.keys.insert(key, (body, task));
        }
        for (name, defs) in all::<Vec<FieldDef>>(&self.conn, T_FIELD)? {
            let entity = match name.as_str() {
                "customer" => Entity::Customer,
                "organization" => Entity::Organization,
                _ => Entity::Entitlement,
            };
            store.fields.insert(entity, defs);
        }
        if let Some((_, c)) = all::<Counters>(&self.conn, T_META)?.into_iter().next() {
            store.counters = c;
        }
        store.reindex();
        store.dirty.clear();
        Ok(())
    }

    /// Writes what the store marked dirty, in one transaction.
    pub fn flush(&mut self, store: &mut Store) -> Result<(), String> {
        if store.dirty.is_empty() {
            return Ok(());
        }
        let dirty = std::mem::take(&mut store.dirty);
        let tx = self.conn.transaction().map_err(sql)?;
        for (table, id) in &dirty {
            let json = match *table {
                T_CUSTOMER => to_json(store.customers.get(id)),
                T_ORGANIZATION => to_json(store.organizations.get(id)),
                T_PRODUCT => to_json(store.products.get(id)),
                T_ENTITLEMENT => to_json(store.entitlements.get(id)),
                T_TASK => to_json(store.tasks.get(id)),
                T_KEY => to_json(store.keys.get(id)),
                T_META => to_json(Some(&store.counters)),
                T_FIELD => {
                    let entity = match id.as_str() {
                        "customer" => Entity::Customer,
                        "organization" => Entity::Organization,
                        _ => Entity::Entitlement,
                    };
                    to_json(store.fields.get(&entity))
                }
                _ => None,
            };
            match json {
                Some(j) => tx
                    .execute(
                        "INSERT INTO entities (kind, id, json) VALUES (?1, ?2, ?3)
                         ON CONFLICT (kind, id) DO UPDATE SET json = excluded.json",
                        params![table, id, j],
                    )
                    .map_err(sql)?,
                None => tx
                    .execute(
                        "DELETE FROM entities WHERE kind = ?1 AND id = ?2",
                        params![table, id],
                    )
                    .map_err(sql)?,
            };
        }
        tx.commit().map_err(sql)
    }

    pub fn clear(&mut self) -> Result<(), String> {
        self.conn.execute("DELETE FROM entities", []).map_err(sql)?;
        Ok(())
    }

    #[cfg(test)]
    fn get(&self, kind: &str, id: &str) -> Option<String> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row(
                "SELECT json FROM entities WHERE kind = ?1 AND id = ?2",
                params![kind, id],
                |r| r.get(0),
            )
            .optional()
            .unwrap()
    }
}

fn to_json<T: Serialize>(v: Option<&T>) -> Option<String> {
    v.map(|v| serde_json::to_string(v).expect("store values serialize"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use csmport_api::model::DetailFieldType;

    #[test]
    fn write_reopen_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sb.sqlite");
        let mut db = Db::open(&path).unwrap();
        assert!(db.is_empty().unwrap());
        let mut s = Store::default();
        s.add_field(
            Entity::Customer,
            "Tier".into(),
            DetailFieldType {
                name: "TEXT".into(),
                options: None,
            },
        );
        let o = s.new_organization("Acme");
        s.put_customer(Customer {
            id: "qm:1".into(),
            email: "a@x.io".into(),
            display_name: "A".into(),
            details: vec![],
            organization_ids: vec![o.id.clone()],
        });
        db.flush(&mut s).unwrap();
        assert!(s.dirty.is_empty());
        s.remove_customer("qm:1");
        db.flush(&mut s).unwrap();
        assert_eq!(db.get(T_CUSTOMER, "qm:1"), None);
        s.put_customer(Customer {
            id: "qm:2".into(),
            email: "b@x.io".into(),
            display_name: "B".into(),
            details: vec![],
            organization_ids: vec![],
        });
        db.flush(&mut s).unwrap();
        drop(db);

        let db = Db::open(&path).unwrap();
        let mut back = Store::default();
        db.load(&mut back).unwrap();
        assert_eq!(back.customers.len(), 1);
        assert_eq!(back.customer_by_email("B@x.io").unwrap().id, "qm:2");
        assert_eq!(back.organizations[&o.id].name, "Acme");
        assert_eq!(back.field_list(Entity::Customer).len(), 1);
        assert_eq!(back.counters, s.counters);
    }
}
