//! [`OrgId`]: the DT organization whose events a policy accepts.

use std::fmt;
use std::sync::Arc;

/// The DT organization id that an asymmetric token's `sub` must equal.
///
/// DT signs every customer's events with the same keys: the signature proves that DT sent
/// a request, and only `sub` says it is *your* organization's. So the org id is a
/// constructor argument of every asymmetric policy, never an optional setter. The one
/// opt-out, [`any_organization_insecure`](Self::any_organization_insecure), accepts every
/// DT customer's connector and is named so nobody picks it by accident.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OrgId(Option<Arc<str>>);

impl OrgId {
    /// Accept tokens whose `sub` is `id`.
    ///
    /// # Panics
    ///
    /// If `id` is empty.
    pub fn new(id: impl AsRef<str>) -> Self {
        let id = id.as_ref();
        assert!(
            !id.is_empty(),
            "tower-dt-signature: the DT organization id is empty"
        );
        Self(Some(Arc::from(id)))
    }

    /// Accept tokens of ANY DT organization: any DT customer's Data Connector can then
    /// push to you. Only for a receiver that authorizes each event by other means.
    pub fn any_organization_insecure() -> Self {
        Self(None)
    }

    /// The id, `None` for [`any_organization_insecure`](Self::any_organization_insecure).
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Whether a token whose `sub` is `sub` belongs to this organization.
    pub(crate) fn accepts(&self, sub: &str) -> bool {
        self.0.as_deref().is_none_or(|id| id == sub)
    }
}

impl From<&str> for OrgId {
    fn from(id: &str) -> Self {
        Self::new(id)
    }
}

impl From<String> for OrgId {
    fn from(id: String) -> Self {
        Self::new(id)
    }
}

impl fmt::Debug for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(id) => f.debug_tuple("OrgId").field(id).finish(),
            None => f.write_str("OrgId(<any organization: insecure>)"),
        }
    }
}
