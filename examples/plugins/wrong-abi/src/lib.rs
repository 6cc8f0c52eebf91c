//! A library that claims a plugin ABI from the future. The runtime reads only this symbol
//! before refusing it, so nothing else needs to exist: that is the point of reading the
//! version first.

/// An ABI version no runtime speaks.
#[unsafe(no_mangle)]
pub extern "C" fn switchyard_plugin_abi_version() -> u32 {
    999
}
