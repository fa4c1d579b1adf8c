package cardsuite.simbridge;

/**
 * jCardSim draws key pairs and ECDSA nonces from {@code com.licel.jcardsim.crypto.SecureRandomNullProvider}, which
 * in jCardSim's jar is unseeded and deterministic: every card would get the same key pair and every signature the
 * same nonce, which gives the private key away. The bridge ships a class of that name drawing from the platform's
 * SecureRandom; the JVM loads it only when the bridge's classes come before the jCardSim jar on the classpath.
 * {@link #check} makes that a checked condition at start instead of a silent dependency on classpath order.
 */
public final class RandomSource {
    static final String PROVIDER = "com.licel.jcardsim.crypto.SecureRandomNullProvider";

    /** Implemented by the bridge's provider only: how {@link #check} tells it from jCardSim's. */
    public interface Bridge {
    }

    private static volatile boolean checked;

    private RandomSource() {
    }

    /** @throws IllegalStateException when jCardSim's own, deterministic provider is the one the JVM loads */
    public static void check() {
        if (checked) {
            return;
        }
        Class<?> used;
        try {
            used = Class.forName(PROVIDER, false, RandomSource.class.getClassLoader());
        } catch (ClassNotFoundException e) {
            throw new IllegalStateException(PROVIDER + " not found: is jCardSim on the classpath?", e);
        }
        if (!Bridge.class.isAssignableFrom(used)) {
            java.security.CodeSource source = used.getProtectionDomain().getCodeSource();
            throw new IllegalStateException("jCardSim's own " + PROVIDER + " (deterministic: equal keys on every"
                    + " card, predictable ECDSA nonces) is in use, loaded from "
                    + (source == null ? "an unknown place" : source.getLocation())
                    + "; put the bridge's classes before the jCardSim jar on the classpath");
        }
        checked = true;
    }
}
