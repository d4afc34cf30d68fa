//! Information-unit types: byte 0 of every SRP IU (SRP r16a §5, table 8).

/// The type of an information unit, from its first byte.
///
/// Unknown values are kept, not rejected: a target may send an IU this initiator does
/// not implement, and the session must be able to name it in an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IuType {
    /// `SRP_LOGIN_REQ` (initiator → target).
    LoginReq,
    /// `SRP_TSK_MGMT` (initiator → target).
    TskMgmt,
    /// `SRP_CMD` (initiator → target).
    Cmd,
    /// `SRP_I_LOGOUT` (initiator → target).
    ILogout,
    /// `SRP_CRED_RSP` (initiator → target, answering `SRP_CRED_REQ`).
    CredRsp,
    /// `SRP_AER_RSP` (initiator → target, answering `SRP_AER_REQ`).
    AerRsp,
    /// `SRP_T_LOGOUT` (target → initiator).
    TLogout,
    /// `SRP_CRED_REQ` (target → initiator).
    CredReq,
    /// `SRP_AER_REQ` (target → initiator).
    AerReq,
    /// `SRP_LOGIN_RSP` (target → initiator).
    LoginRsp,
    /// `SRP_RSP` (target → initiator).
    Rsp,
    /// `SRP_LOGIN_REJ` (target → initiator).
    LoginRej,
    /// Any other first byte.
    Unknown(u8),
}

impl From<u8> for IuType {
    fn from(byte: u8) -> Self {
        match byte {
            0x00 => IuType::LoginReq,
            0x01 => IuType::TskMgmt,
            0x02 => IuType::Cmd,
            0x03 => IuType::ILogout,
            0x41 => IuType::CredRsp,
            0x42 => IuType::AerRsp,
            0x80 => IuType::TLogout,
            0x81 => IuType::CredReq,
            0x82 => IuType::AerReq,
            0xC0 => IuType::LoginRsp,
            0xC1 => IuType::Rsp,
            0xC2 => IuType::LoginRej,
            other => IuType::Unknown(other),
        }
    }
}

impl From<IuType> for u8 {
    fn from(t: IuType) -> u8 {
        match t {
            IuType::LoginReq => 0x00,
            IuType::TskMgmt => 0x01,
            IuType::Cmd => 0x02,
            IuType::ILogout => 0x03,
            IuType::CredRsp => 0x41,
            IuType::AerRsp => 0x42,
            IuType::TLogout => 0x80,
            IuType::CredReq => 0x81,
            IuType::AerReq => 0x82,
            IuType::LoginRsp => 0xC0,
            IuType::Rsp => 0xC1,
            IuType::LoginRej => 0xC2,
            IuType::Unknown(other) => other,
        }
    }
}

impl IuType {
    /// The type of the IU in `iu`, or `None` for an empty buffer.
    pub fn of(iu: &[u8]) -> Option<IuType> {
        iu.first().map(|&b| IuType::from(b))
    }

    /// Whether a target may send this IU to an initiator.
    pub fn is_target_to_initiator(self) -> bool {
        matches!(
            self,
            IuType::TLogout
                | IuType::CredReq
                | IuType::AerReq
                | IuType::LoginRsp
                | IuType::Rsp
                | IuType::LoginRej
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips() {
        for b in 0..=u8::MAX {
            assert_eq!(u8::from(IuType::from(b)), b);
        }
    }

    #[test]
    fn known_types_are_not_unknown() {
        let known = [
            0x00, 0x01, 0x02, 0x03, 0x41, 0x42, 0x80, 0x81, 0x82, 0xC0, 0xC1, 0xC2,
        ];
        for b in 0..=u8::MAX {
            let is_unknown = matches!(IuType::from(b), IuType::Unknown(_));
            assert_eq!(is_unknown, !known.contains(&b), "byte {b:#04x}");
        }
    }

    #[test]
    fn direction_follows_the_high_bit() {
        // SRP r16a: IUs a target sends have bit 7 set; initiator IUs have it clear.
        for b in 0..=u8::MAX {
            let t = IuType::from(b);
            if !matches!(t, IuType::Unknown(_)) {
                assert_eq!(t.is_target_to_initiator(), b & 0x80 != 0, "byte {b:#04x}");
            }
        }
        assert_eq!(IuType::of(&[]), None);
        assert_eq!(IuType::of(&[0xC1, 0, 0]), Some(IuType::Rsp));
    }
}
