//! Pagination of object lists: a bounded page size and an opaque keyset cursor.
//!
//! Parts: [`Limit`] (1 to 100, default 20), [`Cursor`] (where the next page starts), [`ListQuery`] (what a
//! list method takes), [`Page`] (what it returns).
//!
//! Lists are ordered newest first: by `created_at` descending, then by ID descending. A cursor names the
//! last object of a page; the next page holds the objects after it in that order, so objects created or
//! archived meanwhile never shift a page. A cursor is text for callers to hand back unchanged (the
//! server's `next_page`); parsing it is a two-stage check at the edge, so store methods take only valid
//! cursors. Activities page by their own IDs instead ([`crate::activity`]).

use std::fmt;
use std::str::FromStr;

use keyless_core::id::OrganizationId;

use crate::backend::{Decode, Query};
use crate::error::StoreError;
use crate::store::Store;

/// A page size outside 1 to 100.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be between 1 and 100")]
pub struct LimitError;

/// A page size, 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Limit(u32);

impl Limit {
    /// The page size when the caller gives none.
    pub const DEFAULT: Limit = Limit(20);
    /// The largest page size.
    pub const MAX: u32 = 100;

    /// Checks `limit` is within 1 to 100.
    pub fn new(limit: u32) -> Result<Self, LimitError> {
        if (1..=Self::MAX).contains(&limit) {
            Ok(Self(limit))
        } else {
            Err(LimitError)
        }
    }

    /// The page size.
    pub fn get(self) -> u32 {
        self.0
    }

    /// How many rows to fetch: one more than a page, to learn whether another page follows.
    pub(crate) fn fetch(self) -> i64 {
        i64::from(self.0) + 1
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Text that is not a cursor this store issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a valid page cursor")]
pub struct CursorError;

/// Where the next page of a list starts (opaque to callers).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor {
    created_at: i64,
    id: String,
}

/// The longest ID a cursor carries.
const MAX_CURSOR_ID_LEN: usize = 128;

impl Cursor {
    /// Parses a cursor this store issued.
    pub fn parse(text: &str) -> Result<Self, CursorError> {
        let (created_at, id) = text.split_once('.').ok_or(CursorError)?;
        let created_at = created_at.parse::<i64>().map_err(|_| CursorError)?;
        let valid_id = (1..=MAX_CURSOR_ID_LEN).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid_id {
            Ok(Self {
                created_at,
                id: id.to_owned(),
            })
        } else {
            Err(CursorError)
        }
    }

    /// The cursor after an object created at `created_at` with ID `id`.
    pub(crate) fn after(created_at: i64, id: &str) -> Self {
        Self {
            created_at,
            id: id.to_owned(),
        }
    }
}

impl FromStr for Cursor {
    type Err = CursorError;

    fn from_str(text: &str) -> Result<Self, CursorError> {
        Self::parse(text)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.created_at, self.id)
    }
}

/// What a list method takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// The page size.
    pub limit: Limit,
    /// Where to start: `None` for the first page.
    pub cursor: Option<Cursor>,
    /// Whether archived objects are listed too.
    pub include_archived: bool,
}

impl ListQuery {
    /// The keyset bound `(created_at, id)` that every listed row is below: the cursor, or above
    /// everything for the first page.
    pub(crate) fn keyset(&self) -> (i64, &str) {
        self.cursor
            .as_ref()
            .map_or((i64::MAX, ""), |cursor| (cursor.created_at, cursor.id.as_str()))
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The objects, newest first.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<Cursor>,
}

impl<T> Page<T> {
    /// A page from up to `limit + 1` fetched rows; `key` gives an item's `(created_at, id)`.
    pub(crate) fn from_rows(mut items: Vec<T>, limit: Limit, key: impl Fn(&T) -> (i64, &str)) -> Self {
        let page_len = usize::try_from(limit.get()).unwrap_or(usize::MAX);
        let more = items.len() > page_len;
        items.truncate(page_len);
        let next_cursor = if more {
            items.last().map(|last| {
                let (created_at, id) = key(last);
                Cursor::after(created_at, id)
            })
        } else {
            None
        };
        Self { items, next_cursor }
    }
}

/// The SQL of one organization's list page from `$table`: `$1` organization, `$2` include archived,
/// `$3`/`$4` the keyset, `$5` the row limit (one more than the page, to know whether more follow).
macro_rules! list_sql {
    ($table:literal, $columns:expr) => {
        concat!(
            "SELECT ",
            $columns,
            " FROM ",
            $table,
            " WHERE organization_id = $1 AND ($2 OR archived_at IS NULL) \
             AND (created_at, id) < ($3, $4) ORDER BY created_at DESC, id DESC LIMIT $5"
        )
    };
}
pub(crate) use list_sql;

impl Store {
    /// Runs a [`list_sql!`] query and cuts the page; `key` is an item's `(created_at, id)`.
    pub(crate) async fn list_page<T>(
        &self,
        sql: &'static str,
        organization_id: &OrganizationId,
        list: &ListQuery,
        decode: Decode<T>,
        key: impl Fn(&T) -> (i64, &str),
    ) -> Result<Page<T>, StoreError> {
        let (created_at, id) = list.keyset();
        let query = Query::new(sql)
            .arg(organization_id.as_str())
            .arg(list.include_archived)
            .arg(created_at)
            .arg(id)
            .arg(list.limit.fetch());
        let rows = self.read().await?.conn().fetch_all(&query, decode).await?;
        Ok(Page::from_rows(rows, list.limit, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_cursor(text: &str, valid: bool) {
        let parsed = Cursor::parse(text);
        assert_eq!(parsed.is_ok(), valid, "{text:?}");
        if let Ok(cursor) = parsed {
            assert_eq!(cursor.to_string(), text);
        }
    }

    #[test]
    fn cursors() {
        check_cursor("1700000000.svac_abc", true);
        check_cursor("-5.wrkspc_1", true);
        check_cursor("1700000000.", false);
        check_cursor("1700000000", false);
        check_cursor("x.svac_abc", false);
        check_cursor("1.svac abc", false);
        check_cursor("1.svac'abc", false);
        check_cursor("", false);
    }

    #[test]
    fn limits() {
        for (limit, valid) in [(0, false), (1, true), (20, true), (100, true), (101, false)] {
            assert_eq!(Limit::new(limit).is_ok(), valid, "{limit}");
        }
        assert_eq!(Limit::default().get(), 20);
    }
}
