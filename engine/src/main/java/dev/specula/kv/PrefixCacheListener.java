package dev.specula.kv;

/**
 * What the {@link PrefixCache} reports: prompt tokens found and not found, and evictions.
 * The serving layer turns these into metrics; the engine itself records nothing.
 */
public interface PrefixCacheListener {

    /** Reports nothing. */
    PrefixCacheListener NONE = new PrefixCacheListener() {
    };

    /**
     * A prompt was looked up: {@code hitTokens} came from the cache, {@code missTokens}
     * must be prefilled.
     */
    default void onLookup(int hitTokens, int missTokens) {
    }

    /** A block of {@code bytes} was dropped to stay within the size limit. */
    default void onEviction(long bytes) {
    }

}
