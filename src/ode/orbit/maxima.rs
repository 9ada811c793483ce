//! `--maxima x`: the local maxima of a state as a section. x has a maximum where dx/dt
//! crosses zero from above, so the section is the condition "f_x = 0" crossed downwards,
//! f_x the right-hand side of x's equation printed back into the system language
//! (`model::print`, which names auxiliaries, so an equation that uses them still parses
//! as an event condition, and the printed text evaluates to the same value to the bit).

use crate::model::System;
use crate::model::print::print_node;

/// The section equation whose down-crossings are the maxima of state `index`.
pub fn maxima_section(system: &System, index: usize) -> String {
    format!("{} = 0", print_node(system, &system.rhs[index]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Direction;

    #[test]
    fn the_condition_is_the_derivative_even_through_auxiliaries() {
        let s = System::from_equations(
            "aux",
            &[("x", 0.3), ("y", -0.7)],
            &[("a", 1.5)],
            "r = x*x + y*y\ndx = -y - a*x*(r - 1)\ndy = x - (-2)*y*(r - 1)",
        )
        .unwrap();
        for i in 0..2 {
            let text = maxima_section(&s, i);
            let with = s.clone().with_section(&text, Direction::Down).unwrap();
            let e = with.events.last().unwrap();
            assert_eq!(e.direction, Direction::Down);
            // The condition equals dx/dt at some points, to the bit.
            let mut scratch = Vec::new();
            for (x, y) in [(0.3, -0.7), (1.25, 0.5), (-2.0, 3.0)] {
                let mut du = [0.0; 2];
                s.rhs_f64(0.0, &[x, y], &[1.5], &mut scratch, &mut du);
                let g = e.condition_f64(&with, 0.0, &[x, y], &[1.5], &mut scratch);
                assert_eq!(g, du[i], "{text} at ({x}, {y})");
            }
        }
        assert_eq!(maxima_section(&s, 0), "-y - a*x*(r - 1) = 0");
    }
}
