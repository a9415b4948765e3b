package dev.specula.kv;

import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import com.sun.management.HotSpotDiagnosticMXBean;
import com.sun.management.OperatingSystemMXBean;
import org.jspecify.annotations.Nullable;

/**
 * The KV memory one engine's sequences share, {@code maxBytes} in all: the worst-case KV
 * reserved by the sequences admitted (prompt + max new tokens, per model) plus the blocks
 * the {@link PrefixCache} keeps. A sequence reserves before its first model call and
 * releases when it ends; the prefix cache only fills what reservations leave free and is
 * evicted (least recently used first) when a reservation needs its room.
 *
 * <pre>
 * reserved + retained ≤ maxBytes          reserved: sequences' worst cases; retained: prefix blocks
 * enqueue(bytes) → Ticket                 a place in line (FIFO)
 * ticket.tryClaim() → Reservation | null  granted only first in line, once it fits (prefix blocks evicted first)
 * reservation.close()                     gives the bytes back and wakes the line
 * </pre>
 *
 * Thread-safe. Lock order: the prefix cache's lock, then the budget's; the budget never
 * calls the cache while it holds its own lock.
 */
public final class KvBudget {

    /** How often a blocked {@link #reserve} looks at its cancellation. */
    private static final long POLL_NANOS = 50_000_000L;

    private final long maxBytes;

    /** Worst-case bytes of the sequences holding a {@link Reservation}. */
    private long reserved;

    /** Bytes of the prefix cache's blocks. */
    private long retained;

    /** Tickets waiting, in arrival order. */
    private final ArrayDeque<Ticket> line = new ArrayDeque<>();

    private @Nullable PrefixCache prefixCache;

    /**
     * A budget of {@code maxBytes} bytes ({@link Long#MAX_VALUE}: unbounded).
     * @throws IllegalArgumentException when {@code maxBytes} < 1
     */
    public KvBudget(long maxBytes) {
        if (maxBytes < 1) {
            throw new IllegalArgumentException("The KV budget must be >= 1 byte but was " + maxBytes);
        }
        this.maxBytes = maxBytes;
    }

    /**
     * The default cap: a quarter of the machine's (or container's) physical memory, and
     * at most half the JVM's direct-memory limit ({@code -XX:MaxDirectMemorySize},
     * default the heap's maximum): compaction and prefix-cache copies of KV are direct
     * buffers, and a copy briefly holds the old and the new tensors, so twice the KV must
     * fit there.
     */
    public static long defaultMaxBytes() {
        long physical = Long.MAX_VALUE;
        if (ManagementFactory.getOperatingSystemMXBean() instanceof OperatingSystemMXBean os) {
            physical = os.getTotalMemorySize();
        }
        return Math.max(1, Math.min(physical / 4, maxDirectMemory() / 2));
    }

    /** The JVM's direct-memory limit: -XX:MaxDirectMemorySize, or the heap's maximum. */
    public static long maxDirectMemory() {
        try {
            HotSpotDiagnosticMXBean hotspot = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
            long configured = hotspot == null ? 0
                    : Long.parseLong(hotspot.getVMOption("MaxDirectMemorySize").getValue());
            if (configured > 0) {
                return configured;
            }
        }
        catch (RuntimeException ex) {
            // not HotSpot: the default limit
        }
        return Runtime.getRuntime().maxMemory();
    }

    /** The cap. */
    public long maxBytes() {
        return maxBytes;
    }

    /** Bytes reserved by running sequences (their worst case). */
    public synchronized long reservedBytes() {
        return reserved;
    }

    /** Bytes held by the prefix cache's blocks. */
    public synchronized long prefixCacheBytes() {
        return retained;
    }

    /** Requests waiting in line for memory. */
    public synchronized int waiting() {
        return line.size();
    }

    /**
     * Joins the line for {@code bytes}.
     * @throws IllegalArgumentException when {@code bytes} could never fit
     */
    public synchronized Ticket enqueue(long bytes) {
        if (bytes < 0 || bytes > maxBytes) {
            throw new IllegalArgumentException("A reservation of " + bytes + " bytes never fits " + maxBytes);
        }
        Ticket ticket = new Ticket(bytes);
        line.addLast(ticket);
        return ticket;
    }

    /**
     * Waits in line for {@code bytes}, up to {@code maxWait}, while {@code cancelled} is
     * false.
     * @return the reservation, or null when the wait timed out or was cancelled
     */
    public @Nullable Reservation reserve(long bytes, Duration maxWait, BooleanSupplier cancelled)
            throws InterruptedException {
        Ticket ticket = enqueue(bytes);
        long deadline = System.nanoTime() + maxWait.toNanos();
        try {
            while (true) {
                Reservation reservation = ticket.tryClaim();
                if (reservation != null) {
                    return reservation;
                }
                long left = deadline - System.nanoTime();
                if (left <= 0 || cancelled.getAsBoolean()) {
                    return null;
                }
                awaitRelease(Math.min(left, POLL_NANOS));
            }
        }
        finally {
            ticket.cancel();
        }
    }

    /**
     * Waits up to {@code nanos} for memory to be given back (or the line to move).
     */
    public synchronized void awaitRelease(long nanos) throws InterruptedException {
        if (nanos > 0) {
            TimeUnit.NANOSECONDS.timedWait(this, nanos);
        }
    }

    /** Lets {@code cache}'s blocks count here, and be evicted for reservations. */
    void attach(PrefixCache cache, long cachedBytes) {
        synchronized (this) {
            if (prefixCache != null && prefixCache != cache) {
                throw new IllegalStateException("A KV budget takes one prefix cache");
            }
            prefixCache = cache;
            retained += cachedBytes;
        }
    }

    /**
     * Counts {@code bytes} of prefix blocks when they fit beside the reservations and
     * nobody waits.
     */
    synchronized boolean tryRetain(long bytes) {
        if (!line.isEmpty() || reserved + retained + bytes > maxBytes) {
            return false;
        }
        retained += bytes;
        return true;
    }

    /** Prefix blocks of {@code bytes} were dropped. */
    synchronized void unretain(long bytes) {
        retained -= bytes;
        notifyAll();
    }

    /** A place in line for a reservation. */
    public final class Ticket {

        private final long bytes;

        private boolean done;

        private Ticket(long bytes) {
            this.bytes = bytes;
        }

        /** The bytes asked for. */
        public long bytes() {
            return bytes;
        }

        /**
         * The reservation, when this ticket is first in line and its bytes fit (evicting
         * prefix blocks if that makes them fit); else null, and it keeps its place.
         */
        public @Nullable Reservation tryClaim() {
            PrefixCache evictable;
            long shortfall;
            synchronized (KvBudget.this) {
                if (done || line.peekFirst() != this) {
                    return null;
                }
                shortfall = reserved + retained + bytes - maxBytes;
                if (shortfall <= 0) {
                    return grant();
                }
                if (retained == 0 || prefixCache == null) {
                    return null;
                }
                evictable = prefixCache;
            }
            // outside the budget's lock: the cache takes its own, then the budget's
            evictable.evict(shortfall);
            synchronized (KvBudget.this) {
                return !done && line.peekFirst() == this && reserved + retained + bytes <= maxBytes ? grant() : null;
            }
        }

        /** Leaves the line (a no-op once claimed). */
        public void cancel() {
            synchronized (KvBudget.this) {
                if (!done) {
                    done = true;
                    line.remove(this);
                    KvBudget.this.notifyAll();
                }
            }
        }

        private Reservation grant() {
            done = true;
            line.removeFirst();
            reserved += bytes;
            KvBudget.this.notifyAll();
            return new Reservation(bytes);
        }

    }

    /** Bytes held for a sequence until closed. */
    public final class Reservation implements AutoCloseable {

        private final long bytes;

        private boolean closed;

        private Reservation(long bytes) {
            this.bytes = bytes;
        }

        public long bytes() {
            return bytes;
        }

        /** Gives the bytes back (once). */
        @Override
        public void close() {
            synchronized (KvBudget.this) {
                if (!closed) {
                    closed = true;
                    reserved -= bytes;
                    KvBudget.this.notifyAll();
                }
            }
        }

    }

}
