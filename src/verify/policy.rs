//! Which tokens a verifier requires: the policy table, in one function.

use crate::error::DtSignatureError;

/// Which of DT's two signatures a verifier requires.
///
/// Each token is absent, valid, invalid, or (the asymmetric one only) uncheckable: no
/// usable key set. A policy ignores a header it does not name. A 400 beats a 503, and the
/// error reported is the first refusal found: the refusals before the body, in the order
/// HMAC, then ES256, come before a checksum mismatch that only the body shows (again HMAC
/// first), since a token refused before the body spares reading it.
///
/// | policy | accepted when | 400 when | 503 when |
/// | --- | --- | --- | --- |
/// | `Hmac` | HMAC valid | HMAC absent or invalid | never |
/// | `Asymmetric` | ES256 valid | ES256 absent or invalid | ES256 uncheckable |
/// | `Both` | both valid | either absent or invalid | none invalid or absent, ES256 uncheckable |
/// | `Either` | at least one valid and none invalid | any present token invalid, or none present | no token valid or invalid, ES256 uncheckable |
///
/// "Valid" includes the body checks: a token whose checksum does not match the body is
/// invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Policy {
    /// `X-Dt-Signature` only (HS256 under the connector's secret).
    Hmac,
    /// `DT-Asymmetric-Signature` only (ES256 under DT's published keys).
    Asymmetric,
    /// Both tokens, each valid.
    Both,
    /// At least one valid token, and no invalid one: the migration policy.
    Either,
}

impl Policy {
    /// Whether the policy reads `X-Dt-Signature`.
    pub fn uses_hmac(self) -> bool {
        matches!(self, Self::Hmac | Self::Both | Self::Either)
    }

    /// Whether the policy reads `DT-Asymmetric-Signature`.
    pub fn uses_asymmetric(self) -> bool {
        matches!(self, Self::Asymmetric | Self::Both | Self::Either)
    }

    /// `hmac`, `asymmetric`, `both` or `either`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hmac => "hmac",
            Self::Asymmetric => "asymmetric",
            Self::Both => "both",
            Self::Either => "either",
        }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Policy {
    type Err = UnknownPolicy;

    /// `hmac`, `asymmetric`, `both` or `either`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "hmac" => Ok(Self::Hmac),
            "asymmetric" => Ok(Self::Asymmetric),
            "both" => Ok(Self::Both),
            "either" => Ok(Self::Either),
            _ => Err(UnknownPolicy),
        }
    }
}

/// A text that names no [`Policy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownPolicy;

impl std::fmt::Display for UnknownPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unknown signature scheme: expected hmac, asymmetric, both or either")
    }
}

impl std::error::Error for UnknownPolicy {}

/// The state of one token before the body is read.
pub(crate) enum Token<P> {
    /// No header.
    Absent(DtSignatureError),
    /// Every check that needs no body passed.
    Valid(P),
    /// A check failed.
    Invalid(DtSignatureError),
    /// No usable key set (asymmetric only).
    #[cfg_attr(not(feature = "asymmetric"), allow(dead_code))]
    Uncheckable(DtSignatureError),
}

impl<P> Token<P> {
    /// Whether the token, as it stands, makes the request a 400 under `policy`'s rules
    /// for the HMAC token (used to skip waiting for keys that cannot change the answer).
    #[cfg_attr(not(feature = "asymmetric"), allow(dead_code))]
    pub(crate) fn decides_hmac_refusal(&self, policy: Policy) -> bool {
        match self {
            Token::Invalid(_) => true,
            Token::Absent(_) => policy == Policy::Both,
            _ => false,
        }
    }
}

/// What the policy decided before the body: the parts whose checksums the body must match,
/// and a refusal that stands only if the body matches them.
pub(crate) struct Decided<H, E> {
    pub(crate) hmac: Option<H>,
    pub(crate) es: Option<E>,
    /// A 503 (`both`: the HMAC token valid so far, the asymmetric one uncheckable) that a
    /// checksum mismatch of the HMAC token turns into a 400: "a 400 beats a 503", and
    /// "valid" includes the body.
    pub(crate) unless_mismatch: Option<DtSignatureError>,
}

impl<H, E> Decided<H, E> {
    fn parts(hmac: Option<H>, es: Option<E>) -> Self {
        Self {
            hmac,
            es,
            unless_mismatch: None,
        }
    }
}

/// Apply `policy` to the two tokens (`None`: the policy does not read that header).
pub(crate) fn decide<H, E>(
    policy: Policy,
    hmac: Option<Token<H>>,
    es: Option<Token<E>>,
) -> Result<Decided<H, E>, DtSignatureError> {
    use Token::{Absent, Invalid, Uncheckable, Valid};
    let hmac = hmac.map(|token| match token {
        Valid(part) => Ok(part),
        Absent(error) => Err((false, error)),
        Invalid(error) | Uncheckable(error) => Err((true, error)),
    });
    let decided = match (policy, hmac, es) {
        (Policy::Hmac, Some(hmac), _) => hmac.map(|h| (Some(h), None)).map_err(|(_, e)| e),
        (Policy::Asymmetric, _, Some(es)) => match es {
            Valid(part) => Ok((None, Some(part))),
            Absent(error) | Invalid(error) | Uncheckable(error) => Err(error),
        },
        (Policy::Both, Some(hmac), Some(es)) => {
            let hmac = hmac.map_err(|(_, error)| error)?;
            match es {
                Valid(part) => Ok((Some(hmac), Some(part))),
                // The body may still make the HMAC token invalid: a 400.
                Uncheckable(error) => {
                    return Ok(Decided {
                        unless_mismatch: Some(error),
                        ..Decided::parts(Some(hmac), None)
                    })
                }
                Absent(error) | Invalid(error) => Err(error),
            }
        }
        (Policy::Either, Some(hmac), Some(es)) => match (hmac, es) {
            (Err((true, error)), _) => Err(error),
            (_, Invalid(error)) => Err(error),
            (Ok(hmac), Valid(part)) => Ok((Some(hmac), Some(part))),
            (Ok(hmac), Absent(_) | Uncheckable(_)) => Ok((Some(hmac), None)),
            (Err(_), Valid(part)) => Ok((None, Some(part))),
            // Nothing valid, nothing invalid: 503 if the keys could not be had.
            (Err(_), Uncheckable(error)) => Err(error),
            // No token at all: the HMAC's refusal is reported first.
            (Err((_, error)), Absent(_)) => Err(error),
        },
        _ => unreachable!("a policy gets a token for each header it reads"),
    };
    decided.map(|(hmac, es)| Decided::parts(hmac, es))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorKind, Scheme};

    fn err(kind: ErrorKind, scheme: Scheme) -> DtSignatureError {
        DtSignatureError::new(kind).for_scheme(scheme)
    }

    #[derive(Clone, Copy, Debug)]
    enum S {
        Absent,
        Valid,
        Invalid,
        Uncheckable,
    }

    fn hmac(state: S) -> Token<&'static str> {
        match state {
            S::Absent => Token::Absent(err(ErrorKind::MissingHeader, Scheme::Hmac)),
            S::Valid => Token::Valid("hmac"),
            S::Invalid => Token::Invalid(err(ErrorKind::InvalidSignature, Scheme::Hmac)),
            S::Uncheckable => unreachable!("an HMAC token is never uncheckable"),
        }
    }

    fn es(state: S) -> Token<&'static str> {
        match state {
            S::Absent => Token::Absent(err(ErrorKind::MissingAsymmetricHeader, Scheme::Asymmetric)),
            S::Valid => Token::Valid("es"),
            S::Invalid => Token::Invalid(err(ErrorKind::InvalidSignature, Scheme::Asymmetric)),
            S::Uncheckable => {
                Token::Uncheckable(err(ErrorKind::KeysUnavailable, Scheme::Asymmetric))
            }
        }
    }

    /// What the table says: accepted (with which parts), or the status and the scheme of
    /// the error reported.
    #[derive(Debug, PartialEq)]
    enum Want {
        Ok(Option<&'static str>, Option<&'static str>),
        Refused(u16, Scheme),
    }

    /// The policy table, cell by cell, written out by hand from the specification (not
    /// derived from the code): policy, the HMAC token's state, the ES256 token's state
    /// (A absent, V valid, I invalid, U uncheckable, - not read), then what must happen:
    /// `ok` with the verified parts, or the status and the scheme of the error reported.
    const TABLE: &str = "
        hmac        V -  ok hmac -
        hmac        A -  400 hmac
        hmac        I -  400 hmac
        asymmetric  - V  ok - es
        asymmetric  - A  400 asymmetric
        asymmetric  - I  400 asymmetric
        asymmetric  - U  503 asymmetric
        both        V V  ok hmac es
        both        V A  400 asymmetric
        both        V I  400 asymmetric
        both        V U  503 asymmetric
        both        A V  400 hmac
        both        A A  400 hmac
        both        A I  400 hmac
        both        A U  400 hmac
        both        I V  400 hmac
        both        I A  400 hmac
        both        I I  400 hmac
        both        I U  400 hmac
        either      V V  ok hmac es
        either      V A  ok hmac -
        either      V I  400 asymmetric
        either      V U  ok hmac -
        either      A V  ok - es
        either      A A  400 hmac
        either      A I  400 asymmetric
        either      A U  503 asymmetric
        either      I V  400 hmac
        either      I A  400 hmac
        either      I I  400 hmac
        either      I U  400 hmac
    ";

    fn state(text: &str) -> Option<S> {
        match text {
            "-" => None,
            "A" => Some(S::Absent),
            "V" => Some(S::Valid),
            "I" => Some(S::Invalid),
            "U" => Some(S::Uncheckable),
            other => panic!("no state {other}"),
        }
    }

    fn part(text: &'static str) -> Option<&'static str> {
        (text != "-").then_some(text)
    }

    #[test]
    fn every_cell_of_the_policy_table() {
        let mut rows = 0;
        for row in TABLE.lines().map(str::split_whitespace) {
            let cells: Vec<&'static str> = row.collect();
            let [policy, h_state, a_state, outcome, ref rest @ ..] = cells[..] else {
                continue;
            };
            let policy: Policy = policy.parse().unwrap();
            let (h_state, a_state) = (state(h_state), state(a_state));
            let want = match (outcome, rest) {
                ("ok", [h, a]) => Want::Ok(part(h), part(a)),
                (status, [scheme]) => {
                    let scheme = match *scheme {
                        "hmac" => Scheme::Hmac,
                        _ => Scheme::Asymmetric,
                    };
                    Want::Refused(status.parse().unwrap(), scheme)
                }
                _ => panic!("malformed row {cells:?}"),
            };
            // A refusal left to after the body stands when the body matches.
            let got = match decide(policy, h_state.map(hmac), a_state.map(es)) {
                Ok(Decided {
                    unless_mismatch: Some(error),
                    ..
                })
                | Err(error) => Want::Refused(error.status().as_u16(), error.scheme().unwrap()),
                Ok(Decided { hmac, es, .. }) => Want::Ok(hmac, es),
            };
            assert_eq!(got, want, "{policy} hmac={h_state:?} es={a_state:?}");
            rows += 1;
        }
        assert_eq!(rows, 31, "every cell of the table");
    }

    #[test]
    fn policy_names_round_trip() {
        for policy in [
            Policy::Hmac,
            Policy::Asymmetric,
            Policy::Both,
            Policy::Either,
        ] {
            assert_eq!(policy.as_str().parse::<Policy>(), Ok(policy));
        }
        assert_eq!("HMAC".parse::<Policy>(), Err(UnknownPolicy));
    }
}
