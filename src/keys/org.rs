//! [`OrgId`]: the DT organization whose events a policy accepts.

use std::fmt;
use std::sync::Arc;

use crate::error::ConfigError;

/// The prefix of DT's resource name for an organization (`organizations/<id>`), as DT's
/// REST API and Terraform provider write it.
const PREFIX: &str = "organizations/";

/// The DT organization id that an asymmetric token's `sub` must name.
///
/// DT signs every customer's events with the same keys: the signature proves that DT sent
/// a request, and only `sub` says it is *your* organization's. So the org id is a
/// constructor argument of every asymmetric policy, never an optional setter. The one
/// opt-out, [`any_organization_insecure`](Self::any_organization_insecure), accepts every
/// DT customer's connector and is named so nobody picks it by accident.
///
/// Both forms are accepted, in the configuration and in `sub`: the bare id (`c0rg...`,
/// what DT's only real token carries) and DT's resource name (`organizations/c0rg...`,
/// what DT's API and Terraform show). One leading `organizations/` is taken off both sides
/// before they are compared, byte for byte; the id is otherwise opaque (DT has ids such
/// as `dt`).
///
/// ```
/// # #[cfg(feature = "asymmetric")] {
/// use tower_dt_signature::ConfigError;
/// use tower_dt_signature::keys::OrgId;
///
/// assert_eq!(OrgId::new("organizations/c0rg1d").as_str(), Some("c0rg1d"));
/// assert_eq!(OrgId::try_new("dt").unwrap().as_str(), Some("dt"));
/// assert_eq!(OrgId::try_new("c0rg1d\n"), Err(ConfigError::OrgIdWhitespace));
/// # }
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OrgId(Option<Arc<str>>);

impl OrgId {
    /// Accept tokens whose `sub` names the organization `id` (bare, or as
    /// `organizations/<id>`).
    ///
    /// # Panics
    ///
    /// If `id` is not one ([`try_new`](Self::try_new) says when).
    pub fn new(id: impl AsRef<str>) -> Self {
        match Self::try_new(id) {
            Ok(org) => org,
            Err(error) => panic!("tower-dt-signature: {error}"),
        }
    }

    /// Like [`new`](Self::new), but returns an error instead of panicking when, after one
    /// leading `organizations/` is taken off, `id` is empty
    /// ([`ConfigError::EmptyOrgId`]), holds whitespace ([`ConfigError::OrgIdWhitespace`],
    /// such as the line ending of a pasted value) or a `/`
    /// ([`ConfigError::OrgIdSlash`]: another resource's name, such as
    /// `organizations/<id>/members/...`, or the prefix twice).
    pub fn try_new(id: impl AsRef<str>) -> Result<Self, ConfigError> {
        let id = bare(id.as_ref());
        if id.is_empty() {
            Err(ConfigError::EmptyOrgId)
        } else if id.chars().any(char::is_whitespace) {
            Err(ConfigError::OrgIdWhitespace)
        } else if id.contains('/') {
            Err(ConfigError::OrgIdSlash)
        } else {
            Ok(Self(Some(Arc::from(id))))
        }
    }

    /// Accept tokens of ANY DT organization: any DT customer's Data Connector can then
    /// push to you. Only for a receiver that authorizes each event by other means.
    pub fn any_organization_insecure() -> Self {
        Self(None)
    }

    /// The bare id (without `organizations/`), `None` for
    /// [`any_organization_insecure`](Self::any_organization_insecure).
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Whether a token whose `sub` is `sub` belongs to this organization.
    pub(crate) fn accepts(&self, sub: &str) -> bool {
        self.0.as_deref().is_none_or(|id| id == bare(sub))
    }
}

/// `id` without one leading `organizations/`.
fn bare(id: &str) -> &str {
    id.strip_prefix(PREFIX).unwrap_or(id)
}

/// [`bare`], in place.
pub(crate) fn into_bare(mut id: String) -> String {
    let cut = id.len() - bare(&id).len();
    id.drain(..cut);
    id
}

/// Like [`OrgId::new`].
///
/// # Panics
///
/// If the id is not one: use [`OrgId::try_new`] for input you did not write yourself.
impl From<&str> for OrgId {
    fn from(id: &str) -> Self {
        Self::new(id)
    }
}

/// Like [`OrgId::new`].
///
/// # Panics
///
/// If the id is not one: use [`OrgId::try_new`] for input you did not write yourself.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn either_form_on_either_side_is_the_same_organization() {
        for configured in ["c0rg1d", "organizations/c0rg1d"] {
            let org = OrgId::new(configured);
            assert_eq!(org.as_str(), Some("c0rg1d"), "{configured}");
            for sub in ["c0rg1d", "organizations/c0rg1d"] {
                assert!(org.accepts(sub), "{configured} refused {sub}");
            }
            for sub in [
                "c0rg1d2",
                "c0rg1",
                "organizations/c0rg1d2",
                "organizations/organizations/c0rg1d",
                "organization/c0rg1d",
                "Organizations/c0rg1d",
                "/c0rg1d",
                "projects/c0rg1d",
                "organizations/c0rg1d/",
                "C0RG1D",
                "",
                "organizations/",
            ] {
                assert!(!org.accepts(sub), "{configured} accepted {sub:?}");
            }
        }
        // Opaque otherwise: short ids, and one that is the prefix's word.
        assert!(OrgId::new("dt").accepts("organizations/dt"));
        assert!(OrgId::new("organizations").accepts("organizations"));
        assert!(!OrgId::new("organizations").accepts("organizations/"));
    }

    #[test]
    fn try_new_refuses_what_is_no_org_id() {
        let rows = [
            ("", ConfigError::EmptyOrgId),
            ("organizations/", ConfigError::EmptyOrgId),
            ("c0rg1d\n", ConfigError::OrgIdWhitespace),
            (" c0rg1d", ConfigError::OrgIdWhitespace),
            ("c0rg 1d", ConfigError::OrgIdWhitespace),
            ("organizations/c0rg1d\t", ConfigError::OrgIdWhitespace),
            ("c0rg1d\u{a0}", ConfigError::OrgIdWhitespace),
            (
                "organizations/organizations/c0rg1d",
                ConfigError::OrgIdSlash,
            ),
            ("organizations/c0rg1d/", ConfigError::OrgIdSlash),
            ("organizations/c0rg1d/members/x", ConfigError::OrgIdSlash),
            ("projects/c0rg1d", ConfigError::OrgIdSlash),
            ("/c0rg1d", ConfigError::OrgIdSlash),
        ];
        for (id, error) in rows {
            assert_eq!(OrgId::try_new(id), Err(error.clone()), "{id:?}");
            let panic = std::panic::catch_unwind(|| OrgId::new(id)).unwrap_err();
            let text = panic.downcast_ref::<String>().unwrap();
            assert_eq!(*text, format!("tower-dt-signature: {error}"), "{id:?}");
        }
        for id in ["dt", "c0rg1d", "organizations/c0rg1d", "test-org-id", "-"] {
            assert!(OrgId::try_new(id).is_ok(), "{id:?}");
        }
    }
}
