/* A library for tests/e2e/test_native.py's module churn, built twice by
 * the test with -DLIBNAME=a and -DLIBNAME=b: the same code under two sets
 * of names, so that the two copies lay out alike and one mapped where the
 * other was puts its functions at the other's addresses. */
#define CAT_(x, y) x##y
#define CAT(x, y) CAT_(x, y)
#define FN(suffix) CAT(CAT(churn_, LIBNAME), suffix)

__attribute__((noinline)) long FN(_inner)(long n)
{
    volatile long acc = 0;
    for (long i = 0; i < n; i++) acc += i ^ (acc >> 3); /* @loop */
    return acc;
}

long FN(_spin)(long n)
{
    return FN(_inner)(n) + 1;
}
