//! Inputs for the parsers' never-panic tests: random byte strings and
//! valid inputs with a few bytes changed, cut or inserted (xorshift, fixed
//! seed, so a failure repeats).

/// `rounds` inputs: every other one random bytes (up to `max_random` long),
/// the rest one of `valid` with up to three mutations.
pub(crate) fn inputs(valid: &[&[u8]], seed: u64, rounds: usize, max_random: u64) -> Vec<Vec<u8>> {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..rounds)
        .map(|round| {
            let mut input: Vec<u8> = if round % 2 == 0 {
                (0..next() % max_random).map(|_| next() as u8).collect()
            } else {
                valid[(next() % valid.len() as u64) as usize].to_vec()
            };
            for _ in 0..next() % 4 {
                if input.is_empty() {
                    break;
                }
                let at = (next() % input.len() as u64) as usize;
                match next() % 3 {
                    0 => input[at] = next() as u8,
                    1 => input.truncate(at),
                    _ => input.insert(at, next() as u8),
                }
            }
            input
        })
        .collect()
}
