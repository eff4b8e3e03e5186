// The MediaSupervisor's wall API as the WallBroker's WallPort: open/answer/close pass through; the
// worker going away ('exit', or a 'ready' after a restart) ends every wall session it held.
import type { MediaSupervisor } from '../media/supervisor.js';
import type { WallPort } from './wall-broker.js';

export function supervisorWallPort(supervisor: MediaSupervisor): WallPort {
  return {
    openWall: (sessionId) => supervisor.openWall(sessionId),
    answerWall: (sessionId, sdp) => supervisor.answerWall(sessionId, sdp),
    closeWall: (sessionId) => supervisor.closeWall(sessionId),
    onWallSlots(listener) {
      supervisor.on('wall-slots', listener);
      return () => supervisor.off('wall-slots', listener);
    },
    onWorkerGone(listener) {
      const onExit = () => listener();
      const onReady = ({ restarts }: { restarts: number }) => {
        if (restarts > 0) listener();
      };
      supervisor.on('exit', onExit);
      supervisor.on('ready', onReady);
      return () => {
        supervisor.off('exit', onExit);
        supervisor.off('ready', onReady);
      };
    },
  };
}
