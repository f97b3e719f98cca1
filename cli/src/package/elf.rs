//! The lowest glibc a Linux binary needs, read from its ELF version needs
//! (`.gnu.version_r`): the highest `GLIBC_x.y` any symbol it imports asks for.

/// The highest `GLIBC_*` version in the binary's version needs, as `"2.34"`, or `None` when
/// the binary is not a little-endian ELF64 file or needs no glibc symbol version (musl, static).
///
/// # Examples
///
/// ```
/// let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
/// let glibc = cargo_stream::package::elf::glibc_floor(&exe);
/// if cfg!(all(target_os = "linux", target_env = "gnu")) {
///     assert!(glibc.unwrap().starts_with("2."));
/// }
/// ```
pub fn glibc_floor(elf: &[u8]) -> Option<String> {
    const SHT_GNU_VERNEED: u32 = 0x6fff_fffe;
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        return None;
    }
    let u16_at = |off: usize| {
        elf.get(off..off + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |off: usize| {
        elf.get(off..off + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    let u64_at = |off: usize| {
        elf.get(off..off + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    };

    let shoff = usize::try_from(u64_at(0x28)?).ok()?;
    let shentsize = usize::from(u16_at(0x3a)?);
    let shnum = usize::from(u16_at(0x3c)?);
    let section = |i: usize| -> Option<(u32, usize, usize, u32, u32)> {
        let base = shoff.checked_add(i.checked_mul(shentsize)?)?;
        Some((
            u32_at(base + 4)?,
            usize::try_from(u64_at(base + 24)?).ok()?,
            usize::try_from(u64_at(base + 32)?).ok()?,
            u32_at(base + 40)?,
            u32_at(base + 44)?,
        ))
    };
    let mut best: Option<Vec<u32>> = None;
    for i in 0..shnum {
        let (kind, offset, _size, link, count) = section(i)?;
        if kind != SHT_GNU_VERNEED {
            continue;
        }
        let (_, str_off, str_size, _, _) = section(link as usize)?;
        let strtab = elf.get(str_off..str_off.checked_add(str_size)?)?;
        let name_at = |off: u32| -> Option<&str> {
            let rest = strtab.get(off as usize..)?;
            let end = rest.iter().position(|&b| b == 0)?;
            std::str::from_utf8(&rest[..end]).ok()
        };
        let mut need = offset;
        for _ in 0..count {
            let aux_count = u16_at(need + 2)?;
            let mut aux = need.checked_add(u32_at(need + 8)? as usize)?;
            for _ in 0..aux_count {
                if let Some(version) =
                    name_at(u32_at(aux + 8)?).and_then(|n| n.strip_prefix("GLIBC_"))
                {
                    let parts: Option<Vec<u32>> =
                        version.split('.').map(|p| p.parse().ok()).collect();
                    if let Some(parts) = parts
                        && best.as_ref().is_none_or(|b| parts > *b)
                    {
                        best = Some(parts);
                    }
                }
                let next = u32_at(aux + 12)? as usize;
                if next == 0 {
                    break;
                }
                aux = aux.checked_add(next)?;
            }
            let next = u32_at(need + 12)? as usize;
            if next == 0 {
                break;
            }
            need = need.checked_add(next)?;
        }
    }
    best.map(|v| v.iter().map(u32::to_string).collect::<Vec<_>>().join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_elf_is_none() {
        assert_eq!(glibc_floor(b"#!/bin/sh\necho hi\n"), None);
        assert_eq!(glibc_floor(&[0x7f, b'E', b'L', b'F', 2, 1, 0, 0]), None);
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn reads_this_test_binary() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let floor = glibc_floor(&exe).expect("a glibc binary has version needs");
        let mut parts = floor.split('.').map(|p| p.parse::<u32>().unwrap());
        assert_eq!(parts.next(), Some(2));
        assert!(parts.next().unwrap() >= 2);
    }
}
