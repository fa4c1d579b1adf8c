package cardsuite.simbridge;

import com.licel.jcardsim.base.SimulatorRuntime;
import com.licel.jcardsim.base.SimulatorSystem;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import javacard.framework.AID;
import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.CardException;
import javacard.framework.CardRuntimeException;
import javacard.framework.JCSystem;
import javacard.framework.SystemException;

/**
 * jCardSim's runtime for one card, made to keep the Java Card transaction guarantees: JCSystem's transaction calls
 * land here (JCSystem delegates to the active runtime), so begin/commit/abort drive this card's
 * {@link WriteJournal}, a transaction left open by an applet is aborted, and a power-up rolls back the transaction
 * a tear interrupted. jCardSim itself only keeps a depth counter.
 */
final class CardRuntime extends SimulatorRuntime {
    final WriteJournal journal = new WriteJournal();
    /**
     * A real card's short APDU buffer holds the whole longest short command, header, 255 data bytes and Le (JCRE
     * 3.0.5 9.1.1: at least 133, in practice 261); jCardSim's has 260 and cannot take an Nc 255 case 4 command.
     */
    static final int SHORT_APDU_BUFFER = 261;
    /** The APDU buffers are RAM on a card but plain arrays in jCardSim, unknown to its TransientMemory. */
    private final byte[] shortApduBuffer = enlargeBuffer(shortAPDU, SHORT_APDU_BUFFER);
    private final byte[] extendedApduBuffer = extendedAPDU.getBuffer();

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
        byte[] response = super.transmitCommand(command);
        abortOpenTransaction();
        return response;
    }

    /** Power-up: undo the interrupted transaction, then jCardSim's reset (transient memory, selection). */
    @Override
    public void reset() {
        journal.powerUp();
        super.reset();
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
        }
        if (registered[0] == null) {
            throw new IllegalStateException(appletClass.getName() + ".install() did not call register()");
        }
    }

    /** Deselects the selected applet, if any: the card manager (ISD) takes the selection. */
    void deselectCurrent() {
        activateSimulatorRuntimeInstance();
        if (currentAID != null) {
            deselect(lookupApplet(currentAID));
            currentAID = null;
        }
    }

    /**
     * Runs one command in an applet without selecting it, as a security domain hands the STORE DATA of a
     * personalisation to its application (GP Card Spec §11.11.2.2, §11.5.2.3.6): the applet's process() gets the
     * APDU, its select() is not called, and the selection is as before afterwards.
     */
    byte[] processUnselected(AID aid, byte[] command) {
        activateSimulatorRuntimeInstance();
        AID selected = currentAID;
        currentAID = aid;
        try {
            return transmitCommand(command);
        } finally {
            currentAID = selected;
        }
    }

    /**
     * Selects an applet as the card does at power-up for its default-selected application (GP Card Spec §6.6, JC
     * RE §4.1): its select() is called, no SELECT APDU reaches its process(). False when there is no such applet or
     * its select() refuses; then nothing is selected.
     */
    boolean selectImplicitly(AID aid) {
        activateSimulatorRuntimeInstance();
        ApplicationInstance instance = lookupApplet(aid);
        if (instance == null) {
            return false;
        }
        currentAID = aid;
        boolean accepted;
        try {
            accepted = instance.getApplet().select();
        } catch (RuntimeException refused) {
            accepted = false;
        }
        if (!accepted) {
            currentAID = null;
        }
        return accepted;
    }

    /** Removes an applet instance (DELETE): jCardSim deselects it if needed and calls its uninstall(). */
    void uninstall(AID aid) {
        deleteApplet(aid);
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
