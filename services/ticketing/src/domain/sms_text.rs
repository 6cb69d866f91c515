//! How an SMS text travels: GSM 03.38 (data_coding 0: 160 characters, 153
//! per part of a long message, the extension characters counting twice) or
//! else UCS-2 (data_coding 8: 70 UTF-16 units, 67 per part), never splitting
//! a surrogate pair or an escape sequence between parts.

/// The alphabet a message is sent in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gsm7 => "gsm7",
            Self::Ucs2 => "ucs2",
        }
    }

    /// Units of one whole message, and of each part of a long one.
    fn limits(self) -> (usize, usize) {
        match self {
            Self::Gsm7 => (160, 153),
            Self::Ucs2 => (70, 67),
        }
    }
}

const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
    ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Sent as an escape and the character: two septets each.
const GSM_EXTENSION: &str = "^{}\\[~]|€\u{000C}";

/// Units `c` takes in `encoding`.
fn units(c: char, encoding: Encoding) -> usize {
    match encoding {
        Encoding::Gsm7 if GSM_EXTENSION.contains(c) => 2,
        Encoding::Gsm7 => 1,
        Encoding::Ucs2 => c.len_utf16(),
    }
}

/// The encoding `text` needs.
pub fn encoding(text: &str) -> Encoding {
    if text
        .chars()
        .all(|c| GSM_BASIC.contains(c) || GSM_EXTENSION.contains(c))
    {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

/// A text an SMSC passed on in UCS-2 (big-endian UTF-16); a broken unit
/// reads as `�`, a dangling odd octet is dropped.
pub fn decode_ucs2(octets: &[u8]) -> String {
    char::decode_utf16(
        octets
            .chunks_exact(2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]])),
    )
    .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
    .collect()
}

/// A text an SMSC passed on in the GSM default alphabet, one septet per
/// octet (unpacked); an escape takes the extension table's character.
pub fn decode_gsm(septets: &[u8]) -> String {
    const EXTENSION: [(u8, char); 10] = [
        (0x0A, '\u{000C}'),
        (0x14, '^'),
        (0x28, '{'),
        (0x29, '}'),
        (0x2F, '\\'),
        (0x3C, '['),
        (0x3D, '~'),
        (0x3E, ']'),
        (0x40, '|'),
        (0x65, '€'),
    ];
    let basic: Vec<char> = GSM_BASIC.chars().collect();
    let mut text = String::with_capacity(septets.len());
    let mut escaped = false;
    for &septet in septets {
        if escaped {
            escaped = false;
            if let Some((_, c)) = EXTENSION.iter().find(|(code, _)| *code == septet) {
                text.push(*c);
                continue;
            }
        } else if septet == 0x1B {
            escaped = true;
            continue;
        }
        // The table leaves out the escape's own place, 0x1B.
        let index = usize::from(septet) - usize::from(septet > 0x1B);
        text.push(basic.get(index).copied().unwrap_or('?'));
    }
    text
}

/// The text as it goes out: its encoding and the parts it is sent in (one
/// for a short message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub encoding: Encoding,
    pub parts: Vec<String>,
}

pub fn split(text: &str) -> Split {
    let encoding = encoding(text);
    let (whole, part) = encoding.limits();
    let total: usize = text.chars().map(|c| units(c, encoding)).sum();
    if total <= whole {
        return Split {
            encoding,
            parts: vec![text.to_owned()],
        };
    }
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut used = 0;
    for c in text.chars() {
        // A character never straddles two parts: a surrogate pair or an
        // escaped GSM character that doesn't fit starts the next one.
        let size = units(c, encoding);
        if used + size > part {
            parts.push(std::mem::take(&mut current));
            used = 0;
        }
        current.push(c);
        used += size;
    }
    if !current.is_empty() {
        parts.push(current);
    }
    Split { encoding, parts }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units_of(part: &str, encoding: Encoding) -> usize {
        part.chars().map(|c| units(c, encoding)).sum()
    }

    #[test]
    fn latin_text_is_gsm_with_160_then_153_per_part() {
        let short = "A".repeat(160);
        assert_eq!(split(&short).parts.len(), 1);
        assert_eq!(split(&short).encoding, Encoding::Gsm7);
        let long = "B".repeat(161);
        let parts = split(&long).parts;
        assert_eq!(parts.iter().map(String::len).collect::<Vec<_>>(), [153, 8]);
        // Extension characters take two septets: 80 of them fill one message.
        assert_eq!(split(&"€".repeat(80)).parts.len(), 1);
        let escaped = split(&format!("{}€", "x".repeat(152))).parts;
        assert_eq!(escaped.len(), 1, "152 + 2 = 154 septets fit in one");
        let straddling = split(&format!("{}€", "x".repeat(160))).parts;
        assert_eq!(units_of(&straddling[0], Encoding::Gsm7), 153);
        assert!(straddling[1].ends_with('€'));
    }

    #[test]
    fn chinese_is_ucs2_with_70_then_67_per_part() {
        let short = "工".repeat(70);
        assert_eq!(
            split(&short),
            Split {
                encoding: Encoding::Ucs2,
                parts: vec![short.clone()]
            }
        );
        let long = "单".repeat(71);
        let parts = split(&long).parts;
        assert_eq!(
            parts.iter().map(|p| p.chars().count()).collect::<Vec<_>>(),
            [67, 4]
        );
        // One character outside GSM makes the whole message UCS-2.
        assert_eq!(encoding("Order WO-1 accepted 好"), Encoding::Ucs2);
        assert_eq!(encoding("Order WO-1 accepted"), Encoding::Gsm7);
    }

    #[test]
    fn ucs2_from_a_phone_survives_broken_input() {
        let mut octets: Vec<u8> = "接单 WO-1"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(decode_ucs2(&octets), "接单 WO-1");
        // A lone surrogate and an odd trailing octet, as a hostile or broken
        // sender might give them.
        octets.extend_from_slice(&[0xD8, 0x00, 0x41]);
        assert_eq!(decode_ucs2(&octets), "接单 WO-1\u{FFFD}");
    }

    #[test]
    fn gsm_septets_decode_with_the_extension_table() {
        // "ACCEPT WO-1 {ok}" with @ (0x00) and € (escape 0x65).
        let mut septets = b"ACCEPT WO-1 ".to_vec();
        septets.extend_from_slice(&[0x1B, 0x28, b'o', b'k', 0x1B, 0x29, 0x00, 0x1B, 0x65]);
        assert_eq!(decode_gsm(&septets), "ACCEPT WO-1 {ok}@€");
    }

    #[test]
    fn a_surrogate_pair_is_never_split() {
        // 66 units, then an emoji (2 units) that doesn't fit the 67 left.
        let text = format!("{}😀{}", "好".repeat(66), "好".repeat(10));
        let parts = split(&text).parts;
        assert_eq!(units_of(&parts[0], Encoding::Ucs2), 66);
        assert!(parts[1].starts_with('😀'));
        assert_eq!(parts.concat(), text);
    }
}
