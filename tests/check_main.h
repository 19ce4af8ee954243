/* The runner every Check suite in tests/ ends with. */
#ifndef MESHRT_TESTS_CHECK_MAIN_H
#define MESHRT_TESTS_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

/* Run every test of `s` (the runner takes ownership); the process exit status. */
static inline int mrt_check_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
