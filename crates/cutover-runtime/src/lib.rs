//! Task runtimes behind one trait: the process runtime (embedded default).
