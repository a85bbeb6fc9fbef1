//! Criterion benches of vipdrift's hot paths live in `benches/`.
