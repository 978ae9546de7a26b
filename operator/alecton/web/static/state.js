// The page's one mutable state, shared by the modules (each reads and sets its own fields).

export const state = {
  ns: new URLSearchParams(location.search).get('namespace') || '',
  all: new URLSearchParams(location.search).get('allNamespaces') === 'true', // every namespace the caller may list
  can: { deploy: true, approve: true, createImages: true, editApplications: true },
  renders: 0,
  overviewSeq: 0, // only the newest overview answer is rendered
  shownNs: null, // the namespace whose overview is on screen
  details: null, // {application, target} while the details panel is open
  detailsSeq: 0,
  events: null,
  refreshTimer: 0,
  detailsTimer: 0,
  diffs: new Map(), // "promotion|to" -> diff region, kept across re-renders
  pending: null, // what the open dialog acts on
};
