package cardsuite.simbridge;

import cardsuite.simbridge.gp.CardManager;
import cardsuite.simbridge.gp.Registry;
import cardsuite.simbridge.gp.StaticKeys;
import com.licel.jcardsim.base.Simulator;
import java.lang.reflect.Modifier;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import javacard.framework.AID;
import javacard.framework.Applet;

/**
 * One simulated Java Card: jCardSim with its own runtime and its own applet class loader, so several cards in one
 * JVM are independent. Persistent writes are atomic inside transactions and can be torn (see
 * {@link #tearAfterWrites}). Not thread-safe: use each card from one thread at a time.
 */
public final class SimulatedCard {
    private static final byte[] SW_WRONG_LENGTH = {0x67, 0x00};
    private static final byte[] SW_UNKNOWN = {0x6F, 0x00};
    /** SCP "i" parameters used when none is given: what common cards announce. */
    public static final int DEFAULT_SCP02_PARAMETER = 0x55;
    public static final int DEFAULT_SCP03_PARAMETER = 0x70;

    private final AppletClassLoader loader;
    private final CardRuntime runtime = new CardRuntime();
    private final Simulator simulator = new Simulator(runtime);
    private boolean powered = true;
    private int armedTear;
    private int lastCommandWrites;
    /** The GP registry: kept even without a card manager, so applets installed at start are listed later. */
    private final Registry registry = new Registry();
    private CardManager cardManager;

    /**
     * @param appletClassPath where the applet classes are (directories or jars, File.pathSeparator-separated)
     * @throws IllegalStateException if jCardSim's deterministic random source is in use (see {@link RandomSource})
     */
    public SimulatedCard(String appletClassPath) {
        RandomSource.check(); // before any key is generated
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
        registry.addPreinstalled(aid, className);
    }

    /**
     * Gives the card a GlobalPlatform Issuer Security Domain (AID A000000151000000) with the development keys
     * 40..4F as ENC, MAC and DEK, key version 01, and the default "i" parameter (SCP02 55, SCP03 70).
     *
     * @param protocol "scp02" or "scp03"
     */
    public CardManager enableCardManager(String protocol) {
        return enableCardManager(protocol, -1, StaticKeys.DEFAULT_VERSION, StaticKeys.DEVELOPMENT_KEY,
                StaticKeys.DEVELOPMENT_KEY, StaticKeys.DEVELOPMENT_KEY);
    }

    /**
     * Gives the card a GlobalPlatform Issuer Security Domain. From then on the ISD is selected after power-up and
     * by SELECT A000000151000000 (or an empty SELECT); applets are loaded and installed through it.
     *
     * @param protocol "scp02" or "scp03"
     * @param scpParameter the "i" parameter (SCP02 0x15/0x55, SCP03 0x00/0x10/0x30/0x70), or -1 for the default
     * @param keyVersion the key version number of the key set, 1..127
     * @param enc, mac, dek the static keys: 16 bytes for SCP02, 16/24/32 for SCP03
     * @throws IllegalArgumentException for a bad protocol, parameter or key
     * @throws IllegalStateException if the card already has a card manager
     */
    public CardManager enableCardManager(String protocol, int scpParameter, int keyVersion, byte[] enc, byte[] mac,
                                         byte[] dek) {
        if (cardManager != null) {
            throw new IllegalStateException("the card already has a card manager");
        }
        int scp;
        switch (protocol.toLowerCase(Locale.ROOT)) {
            case "scp02": scp = 2; break;
            case "scp03": scp = 3; break;
            default: throw new IllegalArgumentException("secure channel protocol scp02 or scp03, got " + protocol);
        }
        int parameter = scpParameter >= 0 ? scpParameter
                : scp == 2 ? DEFAULT_SCP02_PARAMETER : DEFAULT_SCP03_PARAMETER;
        if (parameter > 0xFF) {
            throw new IllegalArgumentException("the i parameter is one byte");
        }
        cardManager = new CardManager(scp, parameter, new StaticKeys(enc, mac, dek, keyVersion), registry,
                new RuntimePlatform());
        return cardManager;
    }

    /** The card manager, or null when the card has none. */
    public CardManager cardManager() {
        return cardManager;
    }

    public Registry registry() {
        return registry;
    }

    /**
     * Tells the card which Java package in the applet class path a package AID is, so that LOAD accepts a CAP of
     * that package and INSTALL creates its applets from these classes (version 1.0 for a pre-loaded package).
     */
    public void registerLoadable(byte[] packageAid, String javaPackage) {
        registry.registerLoadable(packageAid, javaPackage, 1, 0);
    }

    /** As {@link #registerLoadable(byte[], String)}, with the version GET STATUS shows for a pre-loaded package. */
    public void registerLoadable(byte[] packageAid, String javaPackage, int major, int minor) {
        registry.registerLoadable(packageAid, javaPackage, major, minor);
    }

    /**
     * Names the class of an applet AID (a CAP lists applet AIDs, not class names). Without it, INSTALL uses the
     * one concrete Applet subclass of the package, and fails when there are several.
     */
    public void registerAppletClass(byte[] appletAid, String className) {
        registry.registerAppletClass(appletAid, className);
    }

    /**
     * Marks a registered package as on the card from the start: GET STATUS lists it, CAPs importing it load.
     * Packages of applets installed with {@link #install} are pre-loaded without this.
     */
    public void preload(byte[] packageAid) {
        registry.preload(packageAid);
    }

    /**
     * Sends one command APDU; returns the response data and status word. Exceptions the applet throws become the
     * status word a card would give (an uncaught non-Java Card exception gives 6F00); a malformed APDU gives 6700
     * before anything parses it (see {@link ApduFormat}). No exception of the simulator reaches the caller.
     *
     * @throws CardTearException if an armed tear cut the power during this command; the card is then off
     * @throws IllegalStateException if the card is powered off
     */
    public byte[] transmit(byte[] command) {
        requirePower();
        if (ApduFormat.wrongLength(command)) {
            return SW_WRONG_LENGTH.clone();
        }
        runtime.journal.startCommand(armedTear);
        armedTear = 0;
        byte[] response;
        try {
            response = route(command);
        } catch (PowerLoss lost) {
            response = null; // escaped through a jCardSim path that does not catch Throwable
        } catch (IllegalArgumentException malformed) {
            response = SW_WRONG_LENGTH.clone();
        } catch (RuntimeException bug) {
            // a simulator fault, not the applet's (jCardSim turns those into status words itself): a card
            // would answer something, never hand the host a stack trace
            System.err.println("simbridge: simulator error, answering 6F00: " + bug);
            bug.printStackTrace();
            response = SW_UNKNOWN.clone();
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

    /**
     * {@link #transmit} through a buffer shared with the host (a direct ByteBuffer over the host's memory): the
     * command is the buffer's first {@code length} bytes, the response is written over it from the start, and
     * its length is returned. A host across JNI (JPype) passes and gets back plain ints instead of converting a
     * byte[] each way, a third of an in-process round trip. The buffer holds the longest extended APDU.
     *
     * @throws CardTearException as {@link #transmit}
     */
    public int transmitShared(ByteBuffer shared, int length) {
        byte[] command = new byte[length];
        shared.clear();
        shared.get(command);
        byte[] response = transmit(command);
        shared.clear();
        shared.put(response);
        return response.length;
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
            if (cardManager != null) {
                cardManager.powerUp();
            }
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

    /**
     * Sets the commit buffer size (default {@value WriteJournal#DEFAULT_COMMIT_CAPACITY} bytes, an NXP JCOP 4's):
     * what JCSystem.getMaxCommitCapacity answers and where a transaction's writes throw
     * TransactionException.BUFFER_FULL. How writes are counted: see {@link WriteJournal}.
     *
     * @throws IllegalArgumentException outside 7..32767
     */
    public void setCommitCapacity(int bytes) {
        runtime.journal.setCapacity(bytes);
    }

    public int commitCapacity() {
        return runtime.journal.capacity();
    }

    /** The commit buffer bytes of the largest transaction the last transmit ran (0 when it journaled nothing). */
    public int commitBytes() {
        return runtime.journal.commandPeak();
    }

    /** How often the last transmit called a crypto operation, e.g. "MessageDigest.doFinal", "Signature.sign". */
    public int operationCount(String name) {
        return runtime.journal.operationCount(name);
    }

    /**
     * The card manager sees each APDU of the basic channel first when there is one (it answers for the ISD), else
     * the runtime. MANAGE CHANNEL and the other channels' commands are the runtime's (see {@link LogicalChannels}).
     */
    private byte[] route(byte[] command) {
        if (cardManager != null && LogicalChannels.channelOf(command[0]) == 0
                && !LogicalChannels.isManageChannel(command)) {
            byte[] response;
            try {
                response = cardManager.process(command);
            } catch (RuntimeException bug) {
                System.err.println("simbridge: card manager error, answering 6F00: " + bug);
                bug.printStackTrace();
                return SW_UNKNOWN.clone();
            }
            if (response != null) {
                return response;
            }
        }
        return simulator.transmitCommand(command);
    }

    /** The runtime as the card manager uses it: create, delete and deselect applets, find applet classes. */
    private final class RuntimePlatform implements CardManager.Platform {
        @Override
        public void createInstance(byte[] aid, String className, byte[] installBArray) {
            runtime.install(new AID(aid, (short) 0, (byte) aid.length), appletClass(className), installBArray);
        }

        @Override
        public void deleteInstance(byte[] aid) {
            runtime.uninstall(new AID(aid, (short) 0, (byte) aid.length));
        }

        @Override
        public void deselectApplet() {
            runtime.deselectCurrent();
        }

        @Override
        public List<String> appletClassesIn(String javaPackage) {
            List<String> applets = new ArrayList<>();
            for (String name : loader.classNamesIn(javaPackage)) {
                try {
                    Class<?> type = Class.forName(name, false, loader);
                    if (Applet.class.isAssignableFrom(type) && !Modifier.isAbstract(type.getModifiers())) {
                        applets.add(name);
                    }
                } catch (ClassNotFoundException | LinkageError unusable) {
                    // not a candidate
                }
            }
            return applets;
        }

        @Override
        public boolean selectImplicitly(byte[] aid) {
            return runtime.selectImplicitly(new AID(aid, (short) 0, (byte) aid.length));
        }

        @Override
        public byte[] selectApplet(byte[] aid) {
            byte[] select = new byte[5 + aid.length + 1];
            select[1] = (byte) 0xA4;
            select[2] = 0x04;
            select[4] = (byte) aid.length;
            System.arraycopy(aid, 0, select, 5, aid.length);
            return simulator.transmitCommand(select);
        }

        @Override
        public byte[] processUnselected(byte[] aid, byte[] command) {
            return runtime.processUnselected(new AID(aid, (short) 0, (byte) aid.length), command);
        }

        @Override
        public boolean persistentWrite() {
            return runtime.journal.admitWrite();
        }
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
