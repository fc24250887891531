//! The enums of DT's texts (states, modes, uplinks), made by `string_enum!`: a text this
//! crate does not know is kept in `Unknown`, not refused.

/// An enum of the texts DT sends for one field, one `Variant = "TEXT",` line each, with
/// an `Unknown(String)` variant for texts this crate does not know; `as_str`, `From<&str>`,
/// `Display` and serde go through the text. [`EventType`](super::EventType) is one too.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        ///
        /// A value this crate does not know is kept in `Unknown`, not refused.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version of the crate does not know, as sent.
            Unknown(String),
        }

        impl $name {
            /// The text DT sends for this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Unknown(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $( $text => Self::$variant, )+
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct TextVisitor;
                impl ::serde::de::Visitor<'_> for TextVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str("a string")
                    }
                    fn visit_str<E: ::serde::de::Error>(self, text: &str) -> Result<$name, E> {
                        Ok($name::from(text))
                    }
                }
                deserializer.deserialize_str(TextVisitor)
            }
        }
    };
}
pub(super) use string_enum;

string_enum! {
    /// The `state` of an `objectPresent` or `waterPresent` event.
    pub enum PresenceState {
        /// `PRESENT`
        Present = "PRESENT",
        /// `NOT_PRESENT`
        NotPresent = "NOT_PRESENT",
    }
}

string_enum! {
    /// `networkStatus.transmissionMode`.
    pub enum TransmissionMode {
        /// `LOW_POWER_STANDARD_MODE`
        LowPowerStandardMode = "LOW_POWER_STANDARD_MODE",
        /// `HIGH_POWER_BOOST_MODE`
        HighPowerBoostMode = "HIGH_POWER_BOOST_MODE",
    }
}

string_enum! {
    /// A Cloud Connector's uplink, in `connectionStatus`.
    pub enum Connection {
        /// `SDS`
        Sds = "SDS",
        /// `ETHERNET`
        Ethernet = "ETHERNET",
        /// `CELLULAR`
        Cellular = "CELLULAR",
        /// `OFFLINE`
        Offline = "OFFLINE",
    }
}

string_enum! {
    /// `motion.state`.
    pub enum MotionState {
        /// `MOTION_DETECTED`
        MotionDetected = "MOTION_DETECTED",
        /// `NO_MOTION_DETECTED`
        NoMotionDetected = "NO_MOTION_DETECTED",
    }
}

string_enum! {
    /// `deskOccupancy.state`.
    pub enum DeskOccupancyState {
        /// `OCCUPIED`
        Occupied = "OCCUPIED",
        /// `NOT_OCCUPIED`
        NotOccupied = "NOT_OCCUPIED",
    }
}

string_enum! {
    /// `contact.state`.
    pub enum ContactState {
        /// `OPEN`
        Open = "OPEN",
        /// `CLOSED`
        Closed = "CLOSED",
    }
}

string_enum! {
    /// `probeWireStatus.state`.
    pub enum ProbeWireState {
        /// `INVALID_WIRE_CONFIGURATION`
        InvalidWireConfiguration = "INVALID_WIRE_CONFIGURATION",
        /// `INVALID_COEFFICIENT_CONFIGURATION`
        InvalidCoefficientConfiguration = "INVALID_COEFFICIENT_CONFIGURATION",
        /// `TWO_WIRE`
        TwoWire = "TWO_WIRE",
        /// `THREE_WIRE`
        ThreeWire = "THREE_WIRE",
        /// `FOUR_WIRE`
        FourWire = "FOUR_WIRE",
    }
}
