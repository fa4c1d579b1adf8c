package cardsuite.simbridge;

import com.licel.jcardsim.base.Simulator;
import javacard.framework.AID;
import javacard.framework.Applet;

/**
 * One simulated Java Card: jCardSim with its own runtime and its own applet class loader, so several cards in one
 * JVM are independent. Persistent writes are atomic inside transactions and can be torn (see
 * {@link #tearAfterWrites}). Not thread-safe: use each card from one thread at a time.
 */
public final class SimulatedCard {
    private static final byte[] SW_WRONG_LENGTH = {0x67, 0x00};

    private final AppletClassLoader loader;
    private final CardRuntime runtime = new CardRuntime();
    private final Simulator simulator = new Simulator(runtime);
    private boolean powered = true;
    private int armedTear;
    private int lastCommandWrites;

    /** @param appletClassPath where the applet classes are (directories or jars, File.pathSeparator-separated) */
    public SimulatedCard(String appletClassPath) {
        loader = new AppletClassLoader(appletClassPath);
        simulator.changeProtocol("T=1"); // what jCardSim's ATR announces
    }

    /**
     * Creates an applet instance and makes it selectable, as a card's installer does after INSTALL [for install
     * and make selectable]. The applet's install() gets the standard parameters: Li AID | Lc 00 | La params.
     *
     * @throws IllegalArgumentException if the class is not found, is not an Applet, or the AID/parameters are bad
     * @throws IllegalStateException if the applet's install() throws or does not register
     */
    public void install(byte[] aid, String className, byte[] installParams) {
        requirePower();
        if (aid == null || aid.length < 5 || aid.length > 16) {
            throw new IllegalArgumentException("an AID has 5 to 16 bytes");
        }
        runtime.install(new AID(aid, (short) 0, (byte) aid.length), appletClass(className),
                installParameters(aid, installParams == null ? new byte[0] : installParams));
    }

    /**
     * Sends one command APDU; returns the response data and status word. Exceptions the applet throws become the
     * status word a card would give (an uncaught non-Java Card exception gives 6F00); a malformed APDU gives 6700.
     *
     * @throws CardTearException if an armed tear cut the power during this command; the card is then off
     * @throws IllegalStateException if the card is powered off
     */
    public byte[] transmit(byte[] command) {
        requirePower();
        runtime.journal.startCommand(armedTear);
        armedTear = 0;
        byte[] response;
        try {
            response = simulator.transmitCommand(command);
        } catch (PowerLoss lost) {
            response = null; // escaped through a jCardSim path that does not catch Throwable
        } catch (IllegalArgumentException malformed) {
            response = SW_WRONG_LENGTH.clone();
        } finally {
            runtime.journal.endCommand();
            lastCommandWrites = runtime.journal.writeCount();
        }
        if (runtime.journal.powerLost()) {
            powered = false;
            throw new CardTearException(lastCommandWrites);
        }
        return response;
    }

    public byte[] atr() {
        return simulator.getATR();
    }

    /** A power cycle: see {@link #powerOff()} and {@link #powerOn()}. */
    public void reset() {
        powerOff();
        powerOn();
    }

    /** Cuts the power between commands. Nothing is lost until power-up: RAM contents do not matter to a dead card. */
    public void powerOff() {
        powered = false;
    }

    /**
     * Powers the card up if it is off: rolls back a transaction a tear interrupted, clears transient memory
     * (CLEAR_ON_RESET and CLEAR_ON_DESELECT) and leaves no applet selected.
     */
    public void powerOn() {
        if (!powered) {
            simulator.reset();
            powered = true;
        }
    }

    public boolean isPowered() {
        return powered;
    }

    /**
     * Arms a tear for the next {@link #transmit} only: its first {@code n - 1} persistent writes happen, the
     * n-th does not, and the power is lost there. Every array element store, field store and Util writer call on
     * persistent memory counts as one write. A torn arrayCopyNonAtomic/arrayFillNonAtomic leaves its first half
     * written. If the command makes fewer than n writes, nothing happens. 0 disarms.
     */
    public void tearAfterWrites(int n) {
        if (n < 0) {
            throw new IllegalArgumentException("write index must be >= 1 (0 disarms)");
        }
        armedTear = n;
    }

    /** The persistent writes the last transmit made (up to and including a torn one): its possible tear points. */
    public int persistentWriteCount() {
        return lastCommandWrites;
    }

    private Class<? extends Applet> appletClass(String className) {
        Class<?> type;
        try {
            type = Class.forName(className, false, loader);
        } catch (ClassNotFoundException e) {
            throw new IllegalArgumentException(e.getCause() == null
                    ? "applet class " + className + " not found in the applet class path"
                    : "applet class " + className + " cannot be loaded: " + e.getMessage(), e);
        } catch (LinkageError e) {
            throw new IllegalArgumentException("applet class " + className + " cannot be loaded: " + e, e);
        }
        if (!Applet.class.isAssignableFrom(type)) {
            throw new IllegalArgumentException(className + " is not a javacard.framework.Applet");
        }
        return type.asSubclass(Applet.class);
    }

    /** The install() bArray a card's installer builds: Li, instance AID, Lc 0 (no control info), La, parameters. */
    private static byte[] installParameters(byte[] aid, byte[] params) {
        int length = 3 + aid.length + params.length;
        if (length > Byte.MAX_VALUE) {
            throw new IllegalArgumentException("install parameters too long: " + params.length + " bytes");
        }
        byte[] bArray = new byte[length];
        bArray[0] = (byte) aid.length;
        System.arraycopy(aid, 0, bArray, 1, aid.length);
        bArray[1 + aid.length] = 0;
        bArray[2 + aid.length] = (byte) params.length;
        System.arraycopy(params, 0, bArray, 3 + aid.length, params.length);
        return bArray;
    }

    private void requirePower() {
        if (!powered) {
            throw new IllegalStateException("the card is powered off; call reset() or powerOn()");
        }
    }
}
