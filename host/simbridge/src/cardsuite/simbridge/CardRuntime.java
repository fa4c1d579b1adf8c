package cardsuite.simbridge;

import com.licel.jcardsim.base.ApduCase;
import com.licel.jcardsim.base.SimulatorRuntime;
import com.licel.jcardsim.base.SimulatorSystem;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import javacard.framework.AID;
import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.CardException;
import javacard.framework.CardRuntimeException;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.MultiSelectable;
import javacard.framework.Shareable;
import javacard.framework.SystemException;

/**
 * jCardSim's runtime for one card, made to keep the Java Card transaction guarantees: JCSystem's transaction calls
 * land here (JCSystem delegates to the active runtime), so begin/commit/abort drive this card's
 * {@link WriteJournal}, a transaction left open by an applet is aborted, and a power-up rolls back the transaction
 * a tear interrupted. jCardSim itself only keeps a depth counter.
 *
 * It also does the Java Card RE's applet selection on 20 logical channels, which jCardSim has not (one selected
 * applet, channel bits ignored): see the "Logical channels" section below and {@link LogicalChannels}.
 */
final class CardRuntime extends SimulatorRuntime {
    final WriteJournal journal = new WriteJournal();
    private final ContextTransientMemory memory;
    private final LogicalChannels channels = new LogicalChannels();
    /** The channel of the command being processed: APDU.getCLAChannel and JCSystem.getAssignedChannel. */
    private int activeChannel;
    /**
     * A real card's short APDU buffer holds the whole longest short command, header, 255 data bytes and Le (JCRE
     * 3.0.5 9.1.1: at least 133, in practice 261); jCardSim's has 260 and cannot take an Nc 255 case 4 command.
     */
    static final int SHORT_APDU_BUFFER = 261;
    /** The APDU buffers are RAM on a card but plain arrays in jCardSim, unknown to its TransientMemory. */
    private final byte[] shortApduBuffer = enlargeBuffer(shortAPDU, SHORT_APDU_BUFFER);
    private final byte[] extendedApduBuffer = extendedAPDU.getBuffer();
    /** jCardSim's APDU keeps the channel in ramVars[LOGICAL_CHN] but never sets it: the arrays, found once. */
    private final short[] shortApduState = apduState(shortAPDU);
    private final short[] extendedApduState = apduState(extendedAPDU);
    private static final int APDU_LOGICAL_CHANNEL = 6;

    CardRuntime() {
        this(new ContextTransientMemory());
    }

    private CardRuntime(ContextTransientMemory memory) {
        super(memory);
        this.memory = memory;
    }

    private static short[] apduState(APDU apdu) {
        return (short[]) FieldAccess.get(FieldAccess.find(APDU.class, "ramVars"), apdu);
    }

    /** Gives jCardSim's APDU object a buffer of {@code size} bytes (its field is private, not final). */
    private static byte[] enlargeBuffer(APDU apdu, int size) {
        byte[] buffer = new byte[size];
        FieldAccess.set(FieldAccess.find(APDU.class, "buffer"), apdu, buffer);
        return buffer;
    }

    /** The card whose code runs on this thread; null when the active runtime is not one of ours. */
    static CardRuntime active() {
        SimulatorRuntime runtime = SimulatorSystem.instance();
        return runtime instanceof CardRuntime ? (CardRuntime) runtime : null;
    }

    boolean isPersistent(Object array) {
        return array != shortApduBuffer && array != extendedApduBuffer
                && transientMemory.isTransient(array) == JCSystem.NOT_A_TRANSIENT_OBJECT;
    }

    @Override
    public void beginTransaction() {
        journal.openTransaction();
        super.beginTransaction();
    }

    @Override
    public void commitTransaction() {
        journal.commitTransaction();
        super.commitTransaction();
    }

    @Override
    public void abortTransaction() {
        journal.abortTransaction();
        super.abortTransaction();
    }

    @Override
    public byte[] transmitCommand(byte[] command) {
        byte[] response = dispatch(command);
        abortOpenTransaction();
        return response;
    }

    /**
     * Power-up: undo the interrupted transaction, then jCardSim's reset (transient memory, selection); only the
     * basic channel is open and nothing is selected (JCRE 4.1: the default applet is the card manager's).
     */
    @Override
    public void reset() {
        journal.powerUp();
        super.reset();
        channels.reset();
        setContext(null);
    }

    /**
     * Calls the applet's static install(bArray, 0, length) the way a card's installer does, and registers the
     * instance it creates. Unlike jCardSim's installApplet this keeps the applet's own exception as the cause.
     */
    void install(AID aid, Class<? extends Applet> appletClass, byte[] bArray) {
        activateSimulatorRuntimeInstance();
        if (lookupApplet(aid) != null) {
            throw new IllegalArgumentException("an applet with this AID is already installed");
        }
        Method install;
        try {
            install = appletClass.getMethod("install", byte[].class, short.class, byte.class);
            install.setAccessible(true);
        } catch (NoSuchMethodException e) {
            throw new IllegalArgumentException(appletClass.getName() + " has no install(byte[], short, byte)");
        }
        setContext(appletClass.getPackageName()); // what install() allocates belongs to the new applet
        AID[] registered = new AID[1];
        registrationCallback.set((applet, requestedAid) -> {
            AID instanceAid = requestedAid != null ? requestedAid : aid;
            if (registered[0] != null || lookupApplet(instanceAid) != null) {
                SystemException.throwIt(SystemException.ILLEGAL_AID);
            }
            applets.put(instanceAid, new ApplicationInstance(instanceAid, applet));
            registered[0] = instanceAid;
        });
        try {
            install.invoke(null, bArray, (short) 0, (byte) bArray.length);
        } catch (InvocationTargetException e) {
            forget(registered[0]);
            throw new IllegalStateException(appletClass.getName() + ".install() failed: " + describe(e.getCause()),
                    e.getCause());
        } catch (IllegalAccessException e) {
            throw new IllegalArgumentException("cannot call " + install, e);
        } finally {
            registrationCallback.set(null);
            abortOpenTransaction();
            setContext(null);
        }
        if (registered[0] == null) {
            throw new IllegalStateException(appletClass.getName() + ".install() did not call register()");
        }
    }

    /** Deselects the applet selected on the basic channel, if any: the card manager (ISD) takes the selection. */
    void deselectCurrent() {
        activateSimulatorRuntimeInstance();
        if (channels.applet(0) != null) {
            deselectOn(0);
        }
        currentAID = null;
    }

    /** Removes an applet instance (DELETE): deselected on every channel, then jCardSim calls its uninstall(). */
    void uninstall(AID aid) {
        activateSimulatorRuntimeInstance();
        for (int c = 0; c < LogicalChannels.COUNT; c++) {
            if (channels.aid(c) != null && channels.aid(c).equals(aid)) {
                deselectOn(c);
            }
        }
        currentAID = channels.aid(0);
        deleteApplet(aid);
    }

    // ---- Logical channels (Java Card RE 3.0.5 chapter 4). jCardSim keeps one selected applet (currentAID); here
    // each channel has its own, swapped into currentAID for the command addressed to that channel.

    /**
     * One command: its channel from the CLA, MANAGE CHANNEL and applet SELECT done here, anything else handed to
     * jCardSim with the channel's applet as the current one. On return currentAID is the basic channel's again,
     * which is what the card manager sees.
     */
    private byte[] dispatch(byte[] command) {
        activateSimulatorRuntimeInstance();
        int channel = LogicalChannels.channelOf(command[0]);
        if (channel == LogicalChannels.INVALID) {
            return status(ISO7816.SW_CLA_NOT_SUPPORTED); // ISO 7816-4 5.4.1: CLA FF is invalid
        }
        if (LogicalChannels.isManageChannel(command)) {
            return manageChannel(command, channel);
        }
        boolean select = isAppletSelect(command);
        if (!channels.isOpen(channel)) {
            if (!select) {
                return status(ISO7816.SW_LOGICAL_CHANNEL_NOT_SUPPORTED); // JCRE 4.3
            }
            channels.open(channel); // JCRE 4.5.2 step 3: an applet SELECT opens its channel
        }
        activeChannel = channel;
        currentAID = channels.aid(channel);
        setContext(channels.context(channel));
        try {
            return select ? select(command, channel) : super.transmitCommand(command);
        } finally {
            if (currentAID != channels.aid(channel)) {
                channels.select(channel, currentAID, getApplet(currentAID)); // jCardSim's own deselection paths
            }
            activeChannel = 0;
            currentAID = channels.aid(0);
            setContext(null);
        }
    }

    /**
     * An applet SELECT FILE (JCRE 4.5.2): INS A4, P1 04 (by DF name), P2 %000x xx00, a short command, and an
     * interindustry CLA without secure messaging or chaining (%000000cc or %0100dddd). Others go to the applet.
     */
    private static boolean isAppletSelect(byte[] command) {
        byte cla = command[0];
        return (command[1] & 0xFF) == 0xA4 && command[2] == 0x04 && (command[3] & 0xE3) == 0
                && LogicalChannels.interindustry(cla) && !LogicalChannels.secureMessaging(cla)
                && !LogicalChannels.chaining(cla) && command.length > 4 && command[4] != 0;
    }

    /** SELECT by AID on {@code channel} (JCRE 4.5.2 steps 4-9). */
    private byte[] select(byte[] command, int channel) {
        AID candidateAid = findAppletForSelectApdu(command, ApduCase.getCase(command));
        if (candidateAid == null) {
            // step 4: no such applet; the SELECT goes to the applet active on the channel, if there is one
            return currentAID == null ? status(ISO7816.SW_APPLET_SELECT_FAILED) : super.transmitCommand(command);
        }
        Applet candidate = getApplet(candidateAid);
        if (channels.applet(channel) != candidate && !channels.maySelect(candidate, channel)) {
            return status(ISO7816.SW_CONDITIONS_NOT_SATISFIED); // step 5: the current applet stays selected
        }
        if (channels.applet(channel) != null) {
            deselectOn(channel);
        }
        if (!selectOn(channel, candidateAid, candidate)) {
            return status(ISO7816.SW_APPLET_SELECT_FAILED);
        }
        return processSelect(command, candidate);
    }

    /**
     * Makes {@code candidate} the selected applet of {@code channel} and asks it: MultiSelectable.select(boolean)
     * when its context is already active on another channel, Applet.select() otherwise (JCRE 4.2). On refusal
     * (false or an exception) nothing is selected there and, if its context is active nowhere else, the
     * CLEAR_ON_DESELECT memory it was given is cleared.
     */
    private boolean selectOn(int channel, AID candidateAid, Applet candidate) {
        String context = LogicalChannels.contextOf(candidate);
        boolean contextActive = channels.contextActiveElsewhere(context, channel);
        boolean instanceActive = channels.instanceActiveElsewhere(candidate, channel);
        channels.select(channel, candidateAid, candidate);
        currentAID = candidateAid;
        setContext(context);
        boolean accepted;
        try {
            accepted = contextActive && candidate instanceof MultiSelectable
                    ? ((MultiSelectable) candidate).select(instanceActive) : candidate.select();
        } catch (Exception refused) {
            accepted = false;
        }
        if (!accepted) {
            channels.clear(channel);
            currentAID = null;
            if (!contextActive) {
                memory.clearOnDeselect(context);
            }
        }
        return accepted;
    }

    /**
     * Runs one command in an applet without selecting it, as a security domain hands the STORE DATA of a
     * personalisation to its application (GP Card Spec §11.11.2.2, §11.5.2.3.6): the applet's process() gets the
     * APDU in its own context, its select() is not called, and the selection is as before afterwards.
     */
    byte[] processUnselected(AID aid, byte[] command) {
        activateSimulatorRuntimeInstance();
        Applet applet = getApplet(aid);
        AID selected = currentAID;
        currentAID = aid;
        setContext(applet == null ? null : LogicalChannels.contextOf(applet));
        try {
            return super.transmitCommand(command);
        } finally {
            currentAID = selected;
            setContext(null);
        }
    }

    /**
     * Selects an applet on the basic channel as the card does at power-up for its default-selected application
     * (GP Card Spec §6.6, JC RE §4.1): its select() is called, no SELECT APDU reaches its process(). False when
     * there is no such applet or its select() refuses; then nothing is selected.
     */
    boolean selectImplicitly(AID aid) {
        activateSimulatorRuntimeInstance();
        Applet applet = lookupApplet(aid) == null ? null : getApplet(aid);
        if (applet == null) {
            return false;
        }
        if (channels.applet(0) != null) {
            deselectOn(0);
        }
        activeChannel = 0;
        boolean accepted = selectOn(0, aid, applet);
        setContext(null);
        return accepted;
    }

    /**
     * Deselects the applet of {@code channel} (JCRE 4.6): MultiSelectable.deselect(boolean) when its context stays
     * active on another channel, Applet.deselect() otherwise; an open transaction is aborted; the context's
     * CLEAR_ON_DESELECT memory is cleared once no channel has it active.
     */
    private void deselectOn(int channel) {
        Applet applet = channels.applet(channel);
        String context = channels.context(channel);
        boolean contextActive = channels.contextActiveElsewhere(context, channel);
        boolean instanceActive = channels.instanceActiveElsewhere(applet, channel);
        String caller = memory.context();
        setContext(context);
        try {
            if (contextActive && applet instanceof MultiSelectable) {
                ((MultiSelectable) applet).deselect(instanceActive);
            } else {
                applet.deselect();
            }
        } catch (Exception ignored) {
            // JCRE 4.6: an exception from deselect() is caught; the applet is deselected all the same
        }
        if (getTransactionDepth() != 0) {
            abortTransaction();
        }
        channels.clear(channel);
        if (channel == activeChannel) {
            currentAID = null;
        }
        if (!contextActive) {
            memory.clearOnDeselect(context);
        }
        setContext(caller);
    }

    /** jCardSim's own deselection (deleteApplet of the basic channel's applet): the per-channel one. */
    @Override
    protected void deselect(ApplicationInstance instance) {
        if (instance != null && channels.applet(activeChannel) == instance.getApplet()) {
            deselectOn(activeChannel);
        }
    }

    /** After a successful select(): process(SELECT) as the selected applet, with selectingApplet() true. */
    private byte[] processSelect(byte[] command, Applet applet) {
        usingExtendedAPDUs = false;
        responseBufferSize = 0;
        APDU apdu = getCurrentAPDU();
        selecting = true;
        short sw;
        try {
            resetAPDU(apdu, ApduCase.getCase(command), command);
            applet.process(apdu);
            sw = ISO7816.SW_NO_ERROR;
        } catch (ISOException e) {
            sw = e.getReason();
        } catch (Throwable e) {
            sw = ISO7816.SW_UNKNOWN; // JCRE: any other uncaught exception; a tear unwinds through here too
        } finally {
            selecting = false;
            resetAPDU(apdu, null, null);
        }
        return response(sw);
    }

    /**
     * MANAGE CHANNEL (ISO 7816-4 11.1.2; JCRE 4.4.1 open, 4.6.1 close), from {@code origin}. Never forwarded to an
     * applet. OPEN from the basic channel selects nothing on the new channel (the simulated card has no default
     * applet of its own); from another channel the applet selected there, if it may be selected twice.
     */
    private byte[] manageChannel(byte[] command, int origin) {
        byte cla = command[0];
        int p1 = command[2] & 0xFF;
        int p2 = command[3] & 0xFF;
        if (LogicalChannels.secureMessaging(cla)) {
            return status(ISO7816.SW_SECURE_MESSAGING_NOT_SUPPORTED);
        }
        if (LogicalChannels.chaining(cla)) {
            return status(ISO7816.SW_COMMAND_CHAINING_NOT_SUPPORTED);
        }
        if ((p1 != LogicalChannels.P1_OPEN && p1 != LogicalChannels.P1_CLOSE) || p2 >= LogicalChannels.COUNT) {
            return status(ISO7816.SW_FUNC_NOT_SUPPORTED);
        }
        if (!channels.isOpen(origin)) {
            return status(ISO7816.SW_LOGICAL_CHANNEL_NOT_SUPPORTED);
        }
        if (command.length > 5) {
            return status(ISO7816.SW_WRONG_LENGTH); // both variants are case 1 or 2: no command data
        }
        if (p1 == LogicalChannels.P1_CLOSE) {
            return closeChannel(p2);
        }
        int channel = p2;
        if (p2 == 0) {
            if (command.length != 5 || command[4] != 1) {
                return status((short) (ISO7816.SW_CORRECT_LENGTH_00 + 1)); // the answer is one byte
            }
            channel = channels.firstClosed();
            if (channel < 0) {
                return status(ISO7816.SW_FUNC_NOT_SUPPORTED);
            }
        } else if (channels.isOpen(p2)) {
            return status(ISO7816.SW_INCORRECT_P1P2);
        }
        Applet candidate = origin == 0 ? null : channels.applet(origin);
        if (candidate != null && !channels.maySelect(candidate, channel)) {
            return status(ISO7816.SW_CONDITIONS_NOT_SATISFIED); // step 8: the new channel is not opened
        }
        channels.open(channel);
        if (candidate != null) {
            int caller = activeChannel;
            activeChannel = channel;
            boolean accepted = selectOn(channel, channels.aid(origin), candidate);
            activeChannel = caller;
            currentAID = channels.aid(0);
            if (!accepted) {
                channels.close(channel);
                return status(ISO7816.SW_APPLET_SELECT_FAILED);
            }
        }
        return p2 == 0 ? new byte[] {(byte) channel, (byte) 0x90, 0x00} : status(ISO7816.SW_NO_ERROR);
    }

    /** MANAGE CHANNEL CLOSE: never the basic channel (6A81); an already closed one is a warning (6200). */
    private byte[] closeChannel(int channel) {
        if (channel == 0) {
            return status(ISO7816.SW_FUNC_NOT_SUPPORTED);
        }
        if (!channels.isOpen(channel)) {
            return status(SW_WARNING_STATE_UNCHANGED);
        }
        if (channels.applet(channel) != null) {
            int caller = activeChannel;
            activeChannel = channel;
            deselectOn(channel);
            activeChannel = caller;
            currentAID = channels.aid(0);
        }
        channels.close(channel);
        return status(ISO7816.SW_NO_ERROR);
    }

    private static final short SW_WARNING_STATE_UNCHANGED = 0x6200;

    /** Response data (kept only with 61xx, 62xx, 63xx, 9xxx, as jCardSim does) and the status word. */
    private byte[] response(short sw) {
        int sw1 = (sw >> 8) & 0xFF;
        boolean keepData = sw1 == 0x61 || sw1 == 0x62 || sw1 == 0x63 || (sw1 >= 0x90 && sw1 <= 0x9F);
        int length = keepData ? responseBufferSize : 0;
        byte[] response = new byte[length + 2];
        System.arraycopy(responseBuffer, 0, response, 0, length);
        response[length] = (byte) (sw >> 8);
        response[length + 1] = (byte) sw;
        return response;
    }

    private static byte[] status(short sw) {
        return new byte[] {(byte) (sw >> 8), (byte) sw};
    }

    /** The channel the selected applet was selected on: the current command's (jCardSim answers 0 always). */
    @Override
    public byte getAssignedChannel() {
        return (byte) activeChannel;
    }

    /** jCardSim's APDU.getCLAChannel reads a field it never sets: set it for each command. */
    @Override
    protected void resetAPDU(APDU apdu, ApduCase apduCase, byte[] command) {
        super.resetAPDU(apdu, apduCase, command);
        if (command != null) {
            (apdu == shortAPDU ? shortApduState : extendedApduState)[APDU_LOGICAL_CHANNEL] = (short) activeChannel;
        }
    }

    void registerTransientKey(javacard.security.Key key, byte event) {
        memory.registerKey(key, event);
    }

    private void setContext(String packageName) {
        memory.setContext(packageName);
    }

    // ---- The firewall at Shareable interface objects (JCRE 6.2.4-6.2.8): see Firewall.

    /** A computation that may throw what an applet throws. */
    interface ContextCall {
        Object run() throws Throwable;
    }

    /**
     * JCSystem.getAppletShareableInterfaceObject (JCRE 6.2.7.2): null for an absent server; else the server's
     * getShareableInterfaceObject(client, parameter), called in the server's context, and its answer behind the
     * firewall. jCardSim calls it in the client's context and hands the client the object itself.
     */
    @Override
    public Shareable getSharedObject(AID serverAid, byte parameter) {
        AID registered = serverAid == null ? null : lookupAID(serverAid);
        Applet server = registered == null ? null : getApplet(registered);
        if (server == null) {
            return null;
        }
        AID client = currentAID;
        String caller = contextPackage();
        String serverContext = LogicalChannels.contextOf(server);
        Shareable object;
        try {
            object = (Shareable) inContext(registered, serverContext,
                    () -> server.getShareableInterfaceObject(client, parameter));
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable impossible) {
            throw new IllegalStateException(impossible);
        }
        return object == null ? null : Firewall.guard(this, object, registered, serverContext, caller);
    }

    /** Runs {@code call} in the context of applet {@code aid} (package {@code context}), then switches back. */
    Object inContext(AID aid, String context, ContextCall call) throws Throwable {
        AID callerAid = currentAID;
        AID callerPrevious = previousAID;
        String callerContext = contextPackage();
        currentAID = aid;
        previousAID = callerAid;
        setContext(context);
        try {
            return call.run();
        } finally {
            currentAID = callerAid;
            previousAID = callerPrevious;
            setContext(callerContext);
        }
    }

    String contextPackage() {
        return memory.context();
    }

    /** Global arrays cross every context (JCRE 6.2.2): the APDU buffers. */
    boolean isGlobal(Object array) {
        return array == shortApduBuffer || array == extendedApduBuffer;
    }

    private AID lookupAID(AID aid) {
        for (AID installed : applets.keySet()) {
            if (installed.equals(aid)) {
                return installed;
            }
        }
        return null;
    }

    @Override
    public short getMaxCommitCapacity() {
        return (short) journal.capacity();
    }

    @Override
    public short getUnusedCommitCapacity() {
        return (short) journal.unused();
    }

    /** The Java Card runtime aborts a transaction the applet left open when it returns or throws. */
    private void abortOpenTransaction() {
        if (getTransactionDepth() != 0 && !journal.powerLost()) {
            abortTransaction();
        }
    }

    private void forget(AID registeredAid) {
        if (registeredAid != null) {
            applets.remove(registeredAid);
        }
    }

    private static String describe(Throwable failure) {
        if (failure instanceof CardRuntimeException) {
            return failure.getClass().getSimpleName() + String.format(" reason 0x%04X",
                    ((CardRuntimeException) failure).getReason() & 0xFFFF);
        }
        if (failure instanceof CardException) {
            return failure.getClass().getSimpleName() + String.format(" reason 0x%04X",
                    ((CardException) failure).getReason() & 0xFFFF);
        }
        return String.valueOf(failure);
    }
}
