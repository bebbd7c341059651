mod fixtures;
mod gateway;
mod snapshots;
mod stub;
mod token;
