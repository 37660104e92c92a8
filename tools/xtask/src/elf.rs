//! Just enough ELF reading to check a release binary: its machine, that it is static (no
//! `PT_INTERP` program header, so no dynamic loader and no libc needed on the box) and that it
//! is stripped (no `.symtab` section). No dependency for it: the headers are a few fixed offsets.

use std::path::Path;

/// What a release binary is.
pub(crate) struct Elf {
    pub(crate) size: u64,
    machine: u16,
    interpreter: bool,
    symtab: bool,
}

const PT_INTERP: u32 = 3;
const SHT_SYMTAB: u32 = 2;

/// Reads `path`'s ELF headers.
pub(crate) fn inspect(path: &Path) -> Result<Elf, String> {
    let data = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    parse(&data).ok_or_else(|| format!("{} is not a little-endian ELF file", path.display()))
}

fn parse(data: &[u8]) -> Option<Elf> {
    if data.get(..4)? != b"\x7fELF" || *data.get(5)? != 1 {
        return None;
    }
    let wide = *data.get(4)? == 2;
    let u16_at = |at: usize| Some(u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?));
    let addr_at = |at: usize| -> Option<usize> {
        if wide {
            usize::try_from(u64::from_le_bytes(data.get(at..at + 8)?.try_into().ok()?)).ok()
        } else {
            usize::try_from(u32_at(at)?).ok()
        }
    };
    let machine = u16_at(18)?;
    let (phoff, shoff, sizes) =
        if wide { (addr_at(32)?, addr_at(40)?, 54) } else { (addr_at(28)?, addr_at(32)?, 42) };
    let (phentsize, phnum) = (usize::from(u16_at(sizes)?), usize::from(u16_at(sizes + 2)?));
    let (shentsize, shnum) = (usize::from(u16_at(sizes + 4)?), usize::from(u16_at(sizes + 6)?));
    let mut interpreter = false;
    for i in 0..phnum {
        interpreter |= u32_at(phoff + i * phentsize)? == PT_INTERP;
    }
    let mut symtab = false;
    for i in 0..shnum {
        symtab |= u32_at(shoff + i * shentsize + 4)? == SHT_SYMTAB;
    }
    Some(Elf { size: data.len() as u64, machine, interpreter, symtab })
}

impl Elf {
    /// Fails unless this is a static, stripped binary for `arch` (a triple's first part).
    pub(crate) fn check_release(&self, arch: &str) -> Result<(), String> {
        let expected = match arch {
            "x86_64" => 62,
            "aarch64" => 183,
            a if a.starts_with("arm") || a.starts_with("thumb") => 40,
            _ => self.machine,
        };
        if self.machine != expected {
            return Err(format!("the binary is for ELF machine {}, not {arch} ({expected})", self.machine));
        }
        if self.interpreter {
            return Err(
                "the binary is dynamically linked (it has an ELF interpreter): not a static musl build"
                    .into(),
            );
        }
        if self.symtab {
            return Err("the binary is not stripped (it has a .symtab)".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_test_binary_is_dynamic_and_not_stripped() {
        let me = std::env::current_exe().expect("test binary");
        let elf = inspect(&me).expect("an ELF file");
        assert!(elf.size > 0);
        // Test binaries link against the host's libc and keep their symbols.
        assert!(elf.check_release(std::env::consts::ARCH).is_err());
        assert!(parse(b"not an elf").is_none());
    }
}
