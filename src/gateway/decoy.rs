//! [`Decoy`]: what a gateway does for a request whose tenant does not exist, so that the
//! time and the status of its answer do not tell unknown tenants from known ones.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http::HeaderMap;

use crate::error::{DtSignatureError, ErrorKind, Scheme};
#[cfg(feature = "asymmetric")]
use crate::keys::{DtKeys, OrgId};
use crate::verify::{Policy, Start, Verifier};

/// The secret of the decoy's verifier: no token is signed with it.
const DECOY_SECRET: &[u8] = b"tower-dt-signature decoy key: matches no token";

/// The work a gateway does for a request of an unknown tenant: the checks a known tenant
/// of one policy runs, on the same request, with a secret no token is signed with, and the
/// answer thrown away, but for a key outage (below).
///
/// A known tenant refuses a forged token after its crypto work: one HMAC per secret when
/// the policy reads `X-Dt-Signature` and the token gets that far, and one P-256 verify
/// when the policy reads `DT-Asymmetric-Signature` and the token's `kid` is in the key set
/// (a made-up `kid` costs it only a lookup). The decoy runs exactly that code with its own
/// verifier, so that for each token shape an unknown tenant does the work of a known one
/// (equal work, rather than a floor on the time of refusals: no timer, nothing to tune).
///
/// Which decoy a gateway runs, first match wins:
/// 1. the one set with [`DtSignatureLayer::decoy`](crate::DtSignatureLayer::decoy);
/// 2. the one its resolver names ([`ResolveSecrets::decoy`](crate::gateway::ResolveSecrets::decoy)):
///    a [`StaticSecrets`](crate::gateway::StaticSecrets) names
///    [`Decoy::following`] its tenants, so a gateway of ES256 tenants needs no line;
/// 3. [`Decoy::hmac`]. A gateway that then meets a tenant that reads
///    `DT-Asymmetric-Signature` logs a warning, once, naming the fix.
///
/// **A key outage.** When the decoy's key set cannot check the asymmetric token (no key
/// set was ever had, or its `kid` is not in the set and the last refresh failed), a known
/// tenant of its policy answers `503 signing keys unavailable`, so the unknown tenant
/// answers that too: the same status, text and headers. Its
/// [`DtSignatureError`](crate::DtSignatureError) keeps
/// [`kind`](crate::DtSignatureError::kind) `UnknownTenant` (logs, metrics), with the 503 in
/// [`status`](crate::DtSignatureError::status) and its `Display` text, and
/// [`scheme`](crate::DtSignatureError::scheme) `Some(Asymmetric)`: the metric counts it as
/// `kind="unknown_tenant", scheme="asymmetric"`, where every other unknown tenant has
/// `scheme="none"`.
///
/// The decoy never waits for a key refresh and never asks for one (it does not even start
/// a discovered set's refresh task): a known tenant given a made-up `kid` under
/// discovered keys waits for the refresh it triggers (at most once per 30 s, and at each
/// request while no set was ever had), an unknown one does not. SECURITY.md names what
/// still tells tenants apart.
///
/// ```
/// # #[cfg(feature = "asymmetric")] {
/// use tower_dt_signature::gateway::{Decoy, StaticSecrets};
/// use tower_dt_signature::keys::DtKeys;
/// use tower_dt_signature::{verify::Policy, DtSignatureLayer, Verifier};
///
/// let keys = DtKeys::from_jwks("https://identity.example", r#"{"keys":[]}"#).unwrap();
/// let secrets = StaticSecrets::by_path_segment(1)
///     .tenant("warehouse", Verifier::either("warehouse secret", keys.clone(), "org-id"))
///     .tenant("office", Verifier::either("office secret", keys.clone(), "org-id"));
/// // Unknown tenants do the work of an `either` tenant under the same keys, with no line
/// // to add; `.decoy(Decoy::new(Policy::Either, keys))` says the same explicitly.
/// let layer = DtSignatureLayer::gateway(secrets);
/// # let _ = layer;
/// # }
/// ```
#[derive(Clone)]
pub struct Decoy {
    verifier: Verifier,
}

impl Decoy {
    /// The work of an `hmac` tenant with one secret: one HMAC, when the `X-Dt-Signature`
    /// token gets as far as its signature. What a gateway runs when neither
    /// [`DtSignatureLayer::decoy`](crate::DtSignatureLayer::decoy) nor its resolver names
    /// a decoy.
    pub fn hmac() -> Self {
        Self {
            verifier: Verifier::new(DECOY_SECRET),
        }
    }

    /// The work of a tenant of `policy` with one secret, whose asymmetric token is checked
    /// against `keys` (the key set the gateway's tenants share; ignored for
    /// [`Policy::Hmac`]). With the `hmac` decoy, an unknown tenant does no P-256 verify,
    /// and a token under DT's public `kid` tells which ES256 tenants exist.
    #[cfg(feature = "asymmetric")]
    #[cfg_attr(docsrs, doc(cfg(feature = "asymmetric")))]
    pub fn new(policy: Policy, keys: DtKeys) -> Self {
        // An organization no token names, so that a genuine DT token stops where it stops
        // at a known tenant of another organization.
        let org = || OrgId::new("tower-dt-signature-decoy-organization");
        // The decoy looks keys up without starting a refresh task or asking for a refresh.
        let keys = keys.passive();
        let verifier = match policy {
            Policy::Hmac => Verifier::new(DECOY_SECRET),
            Policy::Asymmetric => Verifier::asymmetric(keys, org()),
            Policy::Both => Verifier::both(DECOY_SECRET, keys, org()),
            Policy::Either => Verifier::either(DECOY_SECRET, keys, org()),
        };
        // Its refusals are no tenant's mistake: no warn line naming its made-up
        // organization or a prober's made-up `kid` (the same work, at debug level).
        let verifier = verifier.quiet_notices();
        Self { verifier }
    }

    /// The decoy of a gateway whose tenants are checked by `verifiers`, by the rule of
    /// [`StaticSecrets`](crate::gateway::StaticSecrets) (SECURITY.md, "What still tells
    /// tenants apart"): among the verifiers that read `DT-Asymmetric-Signature`, the
    /// policy and key set that most of them share; a tie goes to the one met first.
    /// `None` when no verifier reads that token (the `hmac` decoy then fits them all).
    ///
    /// Give it the verifiers in a fixed order (a `StaticSecrets` gives them by tenant id),
    /// so that the same tenants always get the same decoy.
    pub fn following<'a>(verifiers: impl IntoIterator<Item = &'a Verifier>) -> Option<Self> {
        #[cfg(feature = "asymmetric")]
        {
            // (policy, key set, how many), in the order first met.
            let mut groups: Vec<(Policy, &DtKeys, usize)> = Vec::new();
            for verifier in verifiers {
                let Some(keys) = verifier.keys() else {
                    continue;
                };
                let policy = verifier.policy();
                if !policy.uses_asymmetric() {
                    continue;
                }
                match groups
                    .iter_mut()
                    .find(|(p, k, _)| *p == policy && k.same_set(keys))
                {
                    Some((_, _, count)) => *count += 1,
                    None => groups.push((policy, keys, 1)),
                }
            }
            // `max_by_key` keeps the last of equals: fold for the first.
            let mut best: Option<(Policy, &DtKeys, usize)> = None;
            for group in groups {
                if best.is_none_or(|(_, _, count)| group.2 > count) {
                    best = Some(group);
                }
            }
            best.map(|(policy, keys, _)| Self::new(policy, keys.clone()))
        }
        #[cfg(not(feature = "asymmetric"))]
        {
            let _ = verifiers.into_iter();
            None
        }
    }

    /// The policy whose work the decoy does.
    pub fn policy(&self) -> Policy {
        self.verifier.policy()
    }

    /// Check the request's tokens as a known tenant would, with no refresh of the key set
    /// asked for or waited on, and forget the answer, but for a key outage: the unknown
    /// tenant's refusal, which answers `503 signing keys unavailable` when a known tenant
    /// of the decoy's policy would (its asymmetric token cannot be checked now).
    pub(crate) fn run(&self, headers: &HeaderMap) -> DtSignatureError {
        let start = std::hint::black_box(self.verifier.start(headers, false));
        let unavailable = matches!(
            &start,
            Start::Done(Err(error)) if error.kind() == ErrorKind::KeysUnavailable
        );
        let error = DtSignatureError::new(ErrorKind::UnknownTenant);
        if unavailable {
            error
                .answered_as(ErrorKind::KeysUnavailable)
                .for_scheme(Scheme::Asymmetric)
        } else {
            error
        }
    }
}

impl Default for Decoy {
    /// [`Decoy::hmac`].
    fn default() -> Self {
        Self::hmac()
    }
}

impl fmt::Debug for Decoy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoy")
            .field("policy", &self.policy())
            .finish_non_exhaustive()
    }
}

/// A gateway layer's decoys: the one set with `DtSignatureLayer::decoy`, the `hmac`
/// fallback (built once), and whether the warning about an `hmac` decoy before an ES256
/// tenant was logged (shared by every service the layer makes).
#[derive(Clone)]
pub(crate) struct Decoys {
    explicit: Option<Decoy>,
    hmac: Decoy,
    warned: Arc<AtomicBool>,
}

impl Decoys {
    pub(crate) fn new() -> Self {
        Self {
            explicit: None,
            hmac: Decoy::hmac(),
            warned: Arc::default(),
        }
    }

    /// `DtSignatureLayer::decoy`: it wins over the resolver's.
    pub(crate) fn set(&mut self, decoy: Decoy) {
        self.explicit = Some(decoy);
    }

    /// The decoy of one request: the explicit one, else the resolver's (`named`), else
    /// the `hmac` one.
    pub(crate) fn pick(&self, named: Option<Decoy>) -> PickedDecoy {
        let decoy = match (&self.explicit, named) {
            (Some(explicit), _) => explicit.clone(),
            (None, Some(named)) => named,
            (None, None) => self.hmac.clone(),
        };
        PickedDecoy {
            decoy,
            warned: Arc::clone(&self.warned),
        }
    }
}

impl fmt::Debug for Decoys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoys")
            .field("explicit", &self.explicit)
            .finish_non_exhaustive()
    }
}

/// The decoy a request of a gateway runs if its tenant is unknown.
pub(crate) struct PickedDecoy {
    decoy: Decoy,
    warned: Arc<AtomicBool>,
}

impl PickedDecoy {
    /// The decoy (the layer's decoy tests read its policy).
    #[cfg(all(test, feature = "asymmetric"))]
    pub(crate) fn decoy(&self) -> &Decoy {
        &self.decoy
    }

    /// The request's tenant is unknown: the decoy's work, and the refusal.
    pub(crate) fn run(&self, headers: &HeaderMap) -> DtSignatureError {
        self.decoy.run(headers)
    }

    /// The request's tenant is checked by `verifier`: warn once per layer when it reads
    /// `DT-Asymmetric-Signature` and the decoy does no P-256 verify.
    pub(crate) fn known(&self, verifier: &Verifier) {
        if verifier.policy().uses_asymmetric()
            && !self.decoy.policy().uses_asymmetric()
            && !self.warned.load(Ordering::Relaxed)
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                tenant_policy = %verifier.policy(),
                decoy_policy = %self.decoy.policy(),
                "a gateway tenant reads DT-Asymmetric-Signature, but unknown tenants do an \
                 hmac tenant's work, so answer sooner and tell which tenants exist: name a \
                 decoy (ResolveSecrets::decoy returning Decoy::new(policy, keys), or \
                 DtSignatureLayer::decoy)"
            );
        }
    }
}
