/* The harness itself (check.h): check_done fails a test that ran no check,
 * and passes one whose checks all held. */
#include "check.h"

int main(void)
{
    int none = check_done("no checks yet"); /* nothing ran: must fail */
    CHECK_INT(none, 1);
    int passed = check_done("one passing check"); /* one check ran and held */
    CHECK_INT(passed, 0);
    return check_done("check");
}
