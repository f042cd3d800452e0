/* placeholder: being written; 77 tells meson to skip */
int main(void) { return 77; }
