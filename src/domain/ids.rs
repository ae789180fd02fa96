//! Prefixed, opaque, time-ordered ids (`ord_01J…`, `sf_01J…`).

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_carry_their_prefix_and_sort_by_time() {
        let a = super::new_id("ord");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = super::new_id("ord");
        assert!(a.starts_with("ord_") && a.len() == 30);
        assert!(a < b);
    }
}
