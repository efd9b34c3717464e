/* A shared object without the Sluice entry symbol. */
int not_a_sluice_plugin(void) { return 42; }
