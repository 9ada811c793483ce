pub mod noise;
