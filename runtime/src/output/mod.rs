//! Output operations: what makes a batch run. `print`, `save_as_text_files` and `foreach_rdd`.

mod foreach;
mod print;
mod save;
