package dev.specula.sampling;

/**
 * Pearson's chi-square goodness of fit, with the critical value from the Wilson–Hilferty
 * approximation.
 */
public final class ChiSquare {

    /** z of the one-sided 0.1% tail of the normal distribution. */
    public static final double Z_999 = 3.0902;

    private ChiSquare() {
    }

    /**
     * The statistic over bins with expected count >= 5; rarer bins are pooled into one.
     * @return {statistic, degrees of freedom}
     */
    public static double[] statistic(long[] observed, double[] expectedProbabilities, long samples) {
        double statistic = 0;
        int bins = 0;
        double pooledExpected = 0;
        long pooledObserved = 0;
        for (int i = 0; i < observed.length; i++) {
            double expected = expectedProbabilities[i] * samples;
            if (expected >= 5) {
                statistic += (observed[i] - expected) * (observed[i] - expected) / expected;
                bins++;
            }
            else {
                pooledExpected += expected;
                pooledObserved += observed[i];
            }
        }
        if (pooledExpected > 0) {
            statistic += (pooledObserved - pooledExpected) * (pooledObserved - pooledExpected)
                    / Math.max(pooledExpected, 1e-9);
            bins++;
        }
        return new double[] { statistic, bins - 1 };
    }

    /** The statistic a correct sampler stays below with probability 99.9%. */
    public static double critical(double degreesOfFreedom) {
        double k = degreesOfFreedom;
        double term = 1 - 2 / (9 * k) + Z_999 * Math.sqrt(2 / (9 * k));
        return k * term * term * term;
    }

}
