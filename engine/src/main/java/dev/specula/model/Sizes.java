package dev.specula.model;

/**
 * Size arithmetic of tensors and buffers, in {@code long}: a size that does not fit a
 * Java array or buffer is a clear error, never an overflow.
 */
final class Sizes {

    private Sizes() {
    }

    /**
     * {@code a × b × c} as an int count of elements of {@code bytesPerElement} bytes
     * each.
     * @throws IllegalStateException naming {@code what} and its dimensions when the bytes
     * exceed what one Java buffer holds (2 GiB)
     */
    static int elements(String what, long a, long b, long c, int bytesPerElement) {
        long elements;
        long bytes;
        try {
            elements = Math.multiplyExact(Math.multiplyExact(a, b), c);
            bytes = Math.multiplyExact(elements, (long) bytesPerElement);
        }
        catch (ArithmeticException ex) {
            throw tooBig(what, a, b, c, Long.MAX_VALUE);
        }
        if (a < 0 || b < 0 || c < 0) {
            throw new IllegalArgumentException(what + " has a negative dimension: " + a + " x " + b + " x " + c);
        }
        if (bytes > Integer.MAX_VALUE) {
            throw tooBig(what, a, b, c, bytes);
        }
        return (int) elements;
    }

    private static IllegalStateException tooBig(String what, long a, long b, long c, long bytes) {
        return new IllegalStateException(what + " of " + a + " x " + b + " x " + c + " elements ("
                + (bytes == Long.MAX_VALUE ? "more than 2^63" : String.valueOf(bytes))
                + " bytes) does not fit one buffer (2 GiB at most): lower the draft length (γ), the batch's "
                + "rows or specula.runtime.prefill-chunk-tokens");
    }

}
