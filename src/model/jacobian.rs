//! The Jacobian ∂f/∂u of a system's right-hand side, as the stiff solvers use it.

use super::derive::{DeriveError, Jacobian, Wrt, jacobian};
use super::system::System;

impl System {
    /// ∂f/∂u over every state: sparse, simplified and CSE'd.
    pub fn state_jacobian(&self) -> Result<Jacobian, DeriveError> {
        let states: Vec<Wrt> = (0..self.dim()).map(Wrt::State).collect();
        jacobian(self, &self.rhs, &states)
    }
}
